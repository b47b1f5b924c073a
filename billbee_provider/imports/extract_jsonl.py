"""Read customer rows from JSON Lines files, one object per line, one row at a time.

See :mod:`billbee_provider.imports.extract` for locations, :class:`SourceRow` and
:class:`SourceError`. The reader streams: memory stays flat however many rows a file has.

This module does not import Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from billbee_provider.customers.json_text import duplicate_key, strict_object_pairs
from billbee_provider.imports.extract import SourceRow, byte_lines, decode_reason, source_chunks
from billbee_provider.imports.storage import Location, describe_location, open_read

DEFAULT_JSONL_ENCODING: Final = "utf-8"


def iter_jsonl(location: Location, *, encoding: str | None = None) -> Iterator[SourceRow]:
    """Yield one row per non-blank line of a JSON Lines file, each line one JSON object.

    A line that is not a JSON object becomes a row with ``fields={}`` and a problem such
    as ``line 7: not a JSON object: Expecting ',' delimiter at column 12``.

    :param location: where the file is (see :func:`~billbee_provider.imports.storage.open_read`).
    :param encoding: the file's encoding (see
        :func:`~billbee_provider.imports.extract.source_chunks`); ``None`` or ``"auto"``:
        UTF-8, or UTF-16/32 recognised by a byte order mark. A leading BOM is ignored.
    :return: a generator of :class:`SourceRow`.
    :raises SourceError: for an unknown encoding or a line longer than
        :data:`~billbee_provider.imports.extract.MAX_LINE_BYTES`.
    """
    name = describe_location(location)
    with open_read(location, infer_compression_from_name=True) as stream:
        chunks, codec = source_chunks(stream, encoding, name, default=DEFAULT_JSONL_ENCODING)
        number = 0
        for line, raw in enumerate(byte_lines(chunks, name=name), start=1):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                number += 1
                yield SourceRow(number, line, {}, [f"line {line}: {decode_reason(exc, codec)}"])
                continue
            text = text.removeprefix("\ufeff") if line == 1 else text
            if text.strip():
                number += 1
                yield _json_row(number, line, text)


def _json_row(number: int, line: int, text: str) -> SourceRow:
    # Strict as a customer body is (customers/json_text.py): a key given twice is a
    # problem of the row, not "the last one wins".
    try:
        value = json.loads(text, object_pairs_hook=strict_object_pairs, parse_constant=_refuse_constant)
        duplicate = duplicate_key(value)
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at column {exc.colno}"
    except ValueError as exc:  # a constant, a too long integer, too deep arrays
        reason = str(exc).removeprefix("not valid JSON: ")
    except RecursionError:
        reason = "nested too deeply"
    else:
        if duplicate is not None:
            return SourceRow(number, line, {}, [f"line {line}: {duplicate}"])
        if isinstance(value, dict):
            return SourceRow(number, line, value)
        reason = f"got {_json_kind(value)}"
    return SourceRow(number, line, {}, [f"line {line}: not a JSON object: {reason}"])


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _json_kind(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = ((bool, "a boolean"), (list, "an array"), (str, "a string"))
    for python_type, kind in kinds:
        if isinstance(value, python_type):
            return kind
    return "null" if value is None else "a number"
