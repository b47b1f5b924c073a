"""Turn a flat row whose columns are Billbee's dotted field paths into a customer body.

The default CSV header names each column by its path in the body, as Billbee's API
reference lists the fields: ``Name, Email, Type, Address.FirstName, Address.City, ...``.
:func:`body_from_dotted` nests the row and converts each cell to the type the customer
schema gives that path (``"0"`` -> ``0`` for ``Type``); strings stay byte-exact.

This module does not import Airflow.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from billbee_provider.api.errors import shorten
from billbee_provider.customers.schema import load_schema

_SHOWN_CHARS: Final = 60
# ASCII digits only: int() would also take "1_000" and non-Latin digits.
_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS: Final[Mapping[str, bool]] = {"true": True, "false": False}

_Conversion = tuple[Any, str | None]


@functools.cache
def field_types() -> Mapping[str, str]:
    """Map every dotted field path of the customer schema to its JSON type.

    Objects are followed into their properties (``Address.City``); arrays are not, as an
    array is given whole, as a JSON cell (``MetaData``).

    :return: e.g. ``{"Type": "integer", "Address": "object", "Address.City": "string", ...}``.
    """
    schema = load_schema()
    types: dict[str, str] = {}
    _collect_types(schema, schema, "", types)
    return MappingProxyType(types)


def _collect_types(
    node: Mapping[str, Any], root: Mapping[str, Any], prefix: str, out: dict[str, str]
) -> None:
    for name, declared in node.get("properties", {}).items():
        resolved = _resolve(declared, root)
        path = f"{prefix}{name}"
        out[path] = _declared_type(resolved)
        if out[path] == "object":
            _collect_types(resolved, root, f"{path}.", out)


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = node.get("$ref")
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return node
    target: Any = root
    for part in reference[2:].split("/"):
        target = target[part]
    return _resolve(target, root)


def _declared_type(node: Mapping[str, Any]) -> str:
    declared = node.get("type")
    if isinstance(declared, list):
        declared = next((kind for kind in declared if kind != "null"), None)
    return declared if isinstance(declared, str) else "any"


def body_from_dotted(fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Build the nested customer body from a row keyed by dotted field paths.

    * A cell that is empty or whitespace only means "not set": the field is left out.
    * A cell is converted to its field's schema type: integers (``"0"``, ``" 1 "``),
      numbers, booleans (``true``/``false``), and arrays or objects given as a JSON cell
      (``MetaData``). Strings are kept exactly as given, inner and outer spaces included.
    * A cell that does not convert is left out and reported once, e.g.
      ``Type: 'abc' is not an integer``.
    * Columns the schema does not know are kept as given, so the validator can name them.

    :param fields: one row, e.g. ``{"Name": "Jürgen Weiß", "Address.City": "Köln"}``.
    :return: the body and the conversion problems (``<column>: <reason>``).
    """
    types = field_types()
    body: dict[str, Any] = {}
    problems: list[str] = []
    for column, cell in fields.items():
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            continue
        value, problem = _convert(column, cell, types.get(column, "any"))
        problem = problem or _place(body, column, value)
        if problem:
            problems.append(problem)
    return body, problems


def _convert(column: str, cell: Any, kind: str) -> _Conversion:
    converter = _CONVERTERS.get(kind)
    if converter is None or not isinstance(cell, str):
        # Strings, fields the schema does not know, and values that are typed already.
        return cell, None
    return converter(column, cell)


def _to_integer(column: str, cell: str) -> _Conversion:
    text = cell.strip()
    if _INTEGER_RE.fullmatch(text):
        return _big_integer(column, cell, text)
    return None, f"{column}: {_show(cell)} is not an integer"


def _big_integer(column: str, cell: str, text: str) -> _Conversion:
    try:
        return int(text), None
    except ValueError:  # Python reads at most sys.get_int_max_str_digits() digits
        return None, f"{column}: {_show(cell)} has too many digits"


def _to_number(column: str, cell: str) -> _Conversion:
    text = cell.strip()
    if _INTEGER_RE.fullmatch(text):
        return _big_integer(column, cell, text)
    if _NUMBER_RE.fullmatch(text):
        return float(text), None
    return None, f"{column}: {_show(cell)} is not a number"


def _to_boolean(column: str, cell: str) -> _Conversion:
    value = _BOOLEANS.get(cell.strip().lower())
    if value is None:
        return None, f"{column}: {_show(cell)} is not a boolean (true or false)"
    return value, None


def _from_json(column: str, cell: str) -> _Conversion:
    try:
        return json.loads(cell), None
    except json.JSONDecodeError as exc:
        # The message names the position, never the cell: it may hold personal data.
        return None, f"{column}: not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, f"{column}: not valid JSON (nested too deeply)"
    except ValueError:  # an integer of more digits than Python reads
        return None, f"{column}: not valid JSON (a number has too many digits)"


_CONVERTERS: Final[Mapping[str, Callable[[str, str], _Conversion]]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "array": _from_json,
    "object": _from_json,
}


def _place(body: dict[str, Any], column: str, value: Any) -> str | None:
    """Put ``value`` at the dotted path ``column``; a problem if it collides."""
    parts = column.split(".")
    if "" in parts:
        # "Address..City" is no path: keep the name whole, the validator then names it.
        parts = [column]
    node = body
    for depth, part in enumerate(parts[:-1], start=1):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return f"{column}: cannot be set, column {'.'.join(parts[:depth])!r} is not an object"
        node = child
    if parts[-1] in node:
        return f"{column}: set twice (also by another column)"
    node[parts[-1]] = value
    return None


def _show(cell: str) -> str:
    return shorten(repr(cell), _SHOWN_CHARS)


def body_key(body: Mapping[str, Any]) -> str | None:
    """The key a row is matched and reported by: its e-mail, stripped and lower-cased.

    :param body: a customer body.
    :return: ``Email``, else ``Address.Email``, else ``None`` if neither is a non-blank string.
    """
    address = body.get("Address")
    candidates = (body.get("Email"), address.get("Email") if isinstance(address, Mapping) else None)
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip().lower()
    return None
