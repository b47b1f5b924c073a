"""Hypothesis strategies for hostile import input: text, CSV and JSON Lines files, bodies, templates.

The CSV builder returns the file's bytes *and* what a correct reader must make of them
(the cells of each record and the physical line it starts on), so tests can compare.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

#: Seconds a property test may take: 2 minutes at the "ci" profile's 60 examples, more
#: in proportion for the "soak" profile (the profile is loaded by tests/conftest.py).
PROPERTY_TIMEOUT: float = 120 * max(1.0, (settings.default.max_examples or 60) / 60)

#: Characters that break naive code: control characters (NUL included), line and
#: paragraph separators, bidi controls, combining marks, a BOM, case-mapping oddities,
#: right-to-left script, astral characters, CSV and Jinja syntax, spreadsheet formulas.
NASTY_CHARS: tuple[str, ...] = (
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\u200b",
    "\u200e",
    "\u200f",
    "\u202e",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffd",
    "e\u0301",
    "a\u0308\u0308\u0308",
    "\u0489",
    "ß",
    "İ",
    "ﬁ",
    "مرحبا",
    "שלום",
    "😀",
    "👩\u200d👩\u200d👧",
    "𝔘",
    "𠜎",
    '"',
    "'",
    ",",
    ";",
    "\\",
    "{{",
    "}}",
    "{%",
    "=",
    "+",
    "-",
    "@",
    " ",
)
#: The line endings a file may mix.
LINE_ENDINGS: tuple[str, ...] = ("\r\n", "\n", "\r")
#: Byte sequences that are not UTF-8: a lone continuation byte, 0xFF, a lead byte
#: without its continuation, an encoded surrogate, a code point above U+10FFFF, an
#: overlong "/".
BAD_UTF8: tuple[bytes, ...] = (b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf")
#: String fields of the customer body without any format or enum.
STRING_FIELDS: tuple[str, ...] = (
    "Name",
    "Tel1",
    "Tel2",
    "VatId",
    "Address.Company",
    "Address.FirstName",
    "Address.LastName",
    "Address.Name2",
    "Address.Street",
    "Address.Housenumber",
    "Address.Zip",
    "Address.City",
    "Address.State",
    "Address.AddressAddition",
)
#: Header names a generated CSV file picks from: real fields, near misses, oddities.
HEADER_NAMES: tuple[str, ...] = (
    *STRING_FIELDS,
    "Email",
    "Type",
    "Address.CountryCode",
    "MetaData",
    "Emial",
    "Address..City",
    "Address",
    " Name ",
    "\ufeffName",
    "Nam\u0065\u0301",
    "",
    "   ",
)
_LINE_END = re.compile(r"\r\n|\r|\n")
_EMAIL = (
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,16}"
    r"@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(?:\.[a-zA-Z]{2,6}){0,2}"
)


def texts(*, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Any text without surrogates, with a good share of :data:`NASTY_CHARS`."""
    piece = st.one_of(st.sampled_from(NASTY_CHARS), st.characters(codec="utf-8"))
    return st.lists(piece, min_size=min_size, max_size=max_size).map("".join)


def filled_texts() -> st.SearchStrategy[str]:
    """Text that is not blank (a blank cell means "not set"), kept byte-exact."""
    return texts(min_size=1).filter(lambda text: text.strip() != "")


def emails() -> st.SearchStrategy[str]:
    """Addresses the WHATWG rule (and so the provider's validator) accepts."""
    return st.from_regex(_EMAIL, fullmatch=True)


@st.composite
def flat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid customer as ``{dotted path: value}``: e-mail, some strings, maybe Type."""
    body: dict[str, Any] = {"Email": draw(emails())}
    for name in draw(st.lists(st.sampled_from(STRING_FIELDS), unique=True, max_size=5)):
        body[name] = draw(filled_texts())
    if draw(st.booleans()):
        body["Type"] = draw(st.sampled_from([0, 1]))
    if draw(st.booleans()):
        body["Address.CountryCode"] = draw(st.sampled_from(["DE", "AT", "CH", "IL"]))
    return body


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"Address.City": "Köln"}`` -> ``{"Address": {"City": "Köln"}}``."""
    body: dict[str, Any] = {}
    for path, value in flat.items():
        node = body
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return body


def json_values(*, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (and NaN/Infinity, which Python's json writes), nested a little."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        texts(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(texts(max_size=6), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


@contextlib.contextmanager
def source_file(data: bytes, suffix: str = ".csv") -> Iterator[Path]:
    """``data`` as a file in a fresh temporary folder (a hypothesis example cannot use tmp_path)."""
    with tempfile.TemporaryDirectory(prefix="billbee-fuzz-") as folder:
        path = Path(folder) / f"customers{suffix}"
        path.write_bytes(data)
        yield path


def physical_lines(data: bytes) -> int:
    """How many lines an editor shows for ``data`` (``\\r\\n``, ``\\n`` and ``\\r`` end one)."""
    text = data.decode("latin-1")
    ends = len(_LINE_END.findall(text))
    return ends + (0 if not text or _LINE_END.search(text[-1]) else 1)


def line_of(data: bytes, position: int) -> int:
    """The physical line (1-based) the byte at ``position`` is on."""
    return len(_LINE_END.findall(data[:position].decode("latin-1"))) + 1


# --- CSV files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvFile:
    """A CSV file as written, and what a correct reader gets back from it.

    :param data: the file's bytes.
    :param header: the header cells as written.
    :param records: the cells of every data record, as written.
    :param starts: the physical line (1-based) each record starts on.
    """

    data: bytes
    header: list[str]
    records: list[list[str]]
    starts: list[int]


def write_csv(
    header: Sequence[str],
    records: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    endings: Sequence[str] = ("\r\n",),
    quote_all: bool = False,
    bom: bool = False,
) -> CsvFile:
    """Write a CSV file, each record ended by the next of ``endings`` (cycled).

    Cells are quoted where needed; a record not ended by ``\\r\\n`` is quoted fully, as
    Python 3.11's writer would leave a lone ``\\r`` unquoted otherwise.
    """
    written = ""
    starts: list[int] = []
    for index, record in enumerate([header, *records]):
        ending = endings[index % len(endings)]
        if index:
            # Counted over all that is written: a "\r" ending and the "\n" of an empty
            # record after it are one line end.
            starts.append(len(_LINE_END.findall(written)) + 1)
        written += _csv_record(record, delimiter, ending, quote_all or ending != "\r\n")
    data = written.encode("utf-8-sig" if bom else "utf-8")
    return CsvFile(data, list(header), [list(record) for record in records], starts)


def _csv_record(cells: Sequence[str], delimiter: str, ending: str, quote_all: bool) -> str:
    """One record as Python's csv writer writes it."""
    buffer = io.StringIO(newline="")
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    csv.writer(buffer, delimiter=delimiter, lineterminator=ending, quoting=quoting).writerow(cells)
    return buffer.getvalue()


@st.composite
def csv_files(draw: st.DrawFn, *, max_rows: int = 8) -> CsvFile:
    """A CSV file of hostile cells: ragged rows, odd header names, mixed line endings."""
    header = draw(st.lists(st.sampled_from(HEADER_NAMES) | texts(max_size=4), min_size=1, max_size=5))
    width = st.integers(min_value=0, max_value=len(header) + 2)
    records = draw(
        st.lists(width.flatmap(lambda n: st.lists(texts(), min_size=n, max_size=n)), max_size=max_rows)
    )
    return write_csv(
        header,
        records,
        delimiter=draw(st.sampled_from([",", ";"])),
        endings=draw(st.lists(st.sampled_from(LINE_ENDINGS), min_size=1, max_size=4)),
        quote_all=draw(st.booleans()),
        bom=draw(st.booleans()),
    )


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes inserted at random places: bad UTF-8, a BOM, NUL, quotes."""
    junk = st.sampled_from([*BAD_UTF8, "\ufeff".encode(), b"\x00", b'"', b"\r", b"\n"])
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:position] + draw(junk) + data[position:]
    if draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return data


def csv_bytes() -> st.SearchStrategy[bytes]:
    """Bytes of CSV files, whole or damaged, and some that are not CSV at all."""
    whole = csv_files().map(lambda file: file.data)
    return st.one_of(
        whole, whole.flatmap(damaged), st.binary(max_size=200), texts(max_size=40).map(str.encode)
    )


# --- JSON Lines files ----------------------------------------------------------------------


def lone_surrogate_texts() -> st.SearchStrategy[str]:
    """Text with lone UTF-16 surrogates: JSON can carry them as ``"\\ud800"``, UTF-8 cannot."""
    surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
    return st.lists(st.one_of(surrogate, st.sampled_from(["@", "a", ".de"])), min_size=1, max_size=6).map(
        "".join
    )


def jsonl_lines() -> st.SearchStrategy[str]:
    """One line's text: an object (of valid or wrongly typed fields), another JSON value, junk."""
    objects = st.one_of(
        flat_bodies(),
        st.dictionaries(st.sampled_from(HEADER_NAMES) | texts(max_size=6), json_values(), max_size=5),
    )
    with_surrogates = st.dictionaries(
        st.sampled_from(["Email", "Name", "Address.City"]) | lone_surrogate_texts(),
        lone_surrogate_texts(),
        min_size=1,
    ).map(json.dumps)  # ensure_ascii: written as \ud800 escapes
    return st.one_of(
        with_surrogates,
        st.tuples(objects, st.booleans()).map(lambda pair: json.dumps(pair[0], ensure_ascii=pair[1])),
        json_values().map(json.dumps),
        texts(max_size=20),
        st.sampled_from(['{"Email": "a@b.de"', "[]", "NaN", '{"a": 1}{"b": 2}', "\ufeff{}", "   ", ""]),
    )


@st.composite
def jsonl_bytes(draw: st.DrawFn) -> bytes:
    """A JSON Lines file with mixed line endings, maybe damaged."""
    lines = draw(st.lists(jsonl_lines(), max_size=8))
    endings = draw(st.lists(st.sampled_from(LINE_ENDINGS), min_size=len(lines), max_size=len(lines)))
    data = "".join(line + ending for line, ending in zip(lines, endings, strict=True)).encode()
    return draw(damaged(data)) if draw(st.booleans()) else data


# --- templates -------------------------------------------------------------------------------

#: 10^12 iterations that print nothing: the output limit alone would never stop them.
TRIPLE_LOOP = (
    "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
#: Templates a user cannot be allowed to run: internals, endless work, huge output, broken syntax.
HOSTILE_LEAVES: tuple[str, ...] = (
    "{{ row.__class__ }}",
    "{{ row.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ row['__class__'] }}",
    "{{ row|attr('__class__') }}",
    "{{ row._fields }}",
    "{{ cycler.__init__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__ }}",
    "{{ namespace.__init__ }}",
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum }}",
    "{{ lipsum(10**9) }}",
    "{{ config }}",
    "{{ request }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    TRIPLE_LOOP,
    "{% for a in 'x' * 10000 %}{% for b in 'x' * 10000 %}{% endfor %}{% endfor %}",
    "{{ 'a' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 10 ** 10 ** 10 ** 10 ** 10 }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(60) }}",
    "{% for i in [1, 2] recursive %}{% if loop.depth < 60 %}{{ loop([1, 2]) }}{% endif %}{% endfor %}",
    "{{ dict(a=1).update(b=2) }}",
    "{{ [1].append(2) }}",
    "{{ '{0.__class__}'.format(row) }}",
    "{% extends 'base.html' %}",
    "{% include '/etc/passwd' %}",
    "{% import 'x' as y %}",
    "{{ row.name | no_such_filter }}",
    "{{ row.name",
    "{% if %}",
    "{% for x in row %}",
    "{# never closed",
    "{{ }}",
    "{{ (" * 300 + "1" + ")" * 300 + " }}",
    "{{ " + "[" * 300 + "]" * 300 + " }}",
    "{{ row.n / 0 }}",
    "{{ row.name.encode('ascii') }}",
)
#: Pieces of ordinary leaves, valid or slightly wrong.
_LEAF_PIECES: tuple[str, ...] = (
    "{{ row.name }}",
    "{{ row.email | lower }}",
    "{{ row.n | int }}",
    "{{ row['x y'] }}",
    "{{ row.missing }}",
    "{{ row.nested.city }}",
    "{{ row.list | join(',') }}",
    "{{ row.n + 1 }}",
    "{{ row.name * 3 }}",
    "{% if row.n %}A{% else %}B{% endif %}",
    "{% for x in row.list %}{{ x }}{% endfor %}",
    "{{ name }}",
    "{{",
    "}}",
    "{%",
    " ",
    "-",
    "Straße ",
)


def template_leaves() -> st.SearchStrategy[str]:
    """Leaf text: hostile leaves, combinations of ordinary pieces, or any text."""
    pieces = st.lists(st.sampled_from(_LEAF_PIECES) | texts(max_size=3), min_size=1, max_size=4).map("".join)
    return st.one_of(st.sampled_from(HOSTILE_LEAVES), pieces, texts(max_size=10))


def templates() -> st.SearchStrategy[dict[str, Any]]:
    """A body template: objects and lists of leaves, constants and nulls."""
    leaves = st.one_of(template_leaves(), st.none(), st.integers(), st.booleans())
    nodes = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(HEADER_NAMES), inner)
        ),
        max_leaves=6,
    )
    return st.dictionaries(st.sampled_from(STRING_FIELDS) | texts(max_size=5), nodes, min_size=1, max_size=4)


def template_rows() -> st.SearchStrategy[dict[str, Any]]:
    """Rows a template renders: the columns it reads, of any type, plus others."""
    columns = st.sampled_from(["name", "email", "n", "x y", "nested", "list", "_fields", "items"])
    return st.dictionaries(columns | texts(max_size=5), json_values(max_leaves=6), max_size=6)
