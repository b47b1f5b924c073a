"""Read a customer's JSON text strictly: a key given twice is an error, not "the last wins".

``json.loads('{"Email": "a@x.de", "Email": "b@x.de"}')`` silently keeps ``b@x.de``; a
customer body or a JSON Lines source line with a duplicate key is almost always a
mistake (two columns mapped to one field, a hand-edited file), so :func:`loads_strict`
refuses it and names the key's path (``Address.City``), never a value. It also turns
the two ways Python's JSON reader fails on sizes into the same one-line error: nesting
deeper than the interpreter's stack (``RecursionError``) and integers of more than
4,300 digits (``ValueError``).

This module does not import Airflow.
"""

from __future__ import annotations

import json
from typing import Any, Final

from billbee_provider.api.errors import shorten

#: How many characters of a key a message shows.
_SHOWN_CHARS: Final = 60


class JsonTextError(ValueError):
    """The text is not acceptable JSON; the message has positions and key paths, no values."""


class _Duplicate:
    """Returned instead of an object that has a key twice, so its parents add their keys."""

    __slots__ = ("path",)

    def __init__(self, path: tuple[str | int, ...]) -> None:
        self.path = path


def _find_duplicate(value: Any, path: tuple[str | int, ...]) -> _Duplicate | None:
    if isinstance(value, _Duplicate):
        return _Duplicate((*path, *value.path))
    if isinstance(value, list):  # arrays are built without a hook: look into them here
        for index, item in enumerate(value):
            found = _find_duplicate(item, (*path, index))
            if found is not None:
                return found
    return None


def strict_object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Duplicate:
    """``object_pairs_hook`` for :func:`json.loads` that marks a key given twice.

    The hook cannot raise at once and still name the whole path (objects are built
    inside out), so it returns a marker that the enclosing objects extend;
    :func:`loads_strict` raises for it. Use :func:`loads_strict` rather than this hook.

    :param pairs: the object's (key, value) pairs in order.
    :return: the object as a dict, or the marker of a duplicate key.
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        found = _find_duplicate(value, (key,))
        if found is not None:
            return found
        if key in result:
            return _Duplicate((key,))
        result[key] = value
    return result


def loads_strict(text: str | bytes) -> Any:
    """Decode JSON text, refusing duplicate keys, too deep nesting and too long integers.

    ``NaN`` and ``Infinity`` (which Python's reader accepts) are refused too: they are
    not JSON, and Billbee could not read them.

    :param text: the JSON text (one customer body, or one JSON Lines line).
    :return: the decoded value.
    :raises JsonTextError: ``not valid JSON: <reason> at line L, column C``,
        ``the key 'Address.City' appears twice in one object``,
        ``not valid JSON: nested too deeply`` or
        ``not valid JSON: a number has too many digits``.
    """
    try:
        value = json.loads(text, object_pairs_hook=strict_object_pairs, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except JsonTextError:
        raise
    except RecursionError:
        raise JsonTextError("not valid JSON: nested too deeply") from None
    except ValueError:  # an integer of more digits than Python reads (sys.get_int_max_str_digits)
        raise JsonTextError("not valid JSON: a number has too many digits") from None
    problem = duplicate_key(value)
    if problem is not None:
        raise JsonTextError(problem)
    return value


def refuse_constant(constant: str) -> Any:
    """``parse_constant`` for :func:`json.loads`: ``NaN``, ``Infinity``, ``-Infinity`` are not JSON.

    :raises JsonTextError: always.
    """
    raise JsonTextError(f"not valid JSON: {constant} is not valid JSON")


def duplicate_key(value: Any) -> str | None:
    """The problem of a value decoded with :func:`strict_object_pairs`, or ``None``.

    :param value: what ``json.loads(..., object_pairs_hook=strict_object_pairs)`` returned.
    :return: ``the key 'Address.City' appears twice in one object``, or ``None``.
    :raises JsonTextError: for arrays nested deeper than the interpreter's stack.
    """
    try:
        found = _find_duplicate(value, ())
    except RecursionError:  # arrays nested as deep as the reader allows
        raise JsonTextError("not valid JSON: nested too deeply") from None
    if found is None:
        return None
    path = ".".join(shorten(str(part), _SHOWN_CHARS) for part in found.path)
    return f"the key {path!r} appears twice in one object"


def pretty_text(value: str) -> str:
    """The rendered ``customer`` as it is shown and stored: JSON text indented by 2.

    Text that :func:`loads_strict` reads as an
    object or array is written again with ``indent=2`` and ``ensure_ascii=False``: the
    same values (the task sends what it would have sent from the original text), key
    order kept, umlauts as they are. A number is written as Python reads it (``1.50``
    becomes ``1.5``, ``1e2`` becomes ``100.0``; the value is the same). Anything else is
    returned unchanged: text that is not JSON (``execute`` reports it), a JSON
    scalar, a number too large for a float (it would become ``Infinity``, which is not
    JSON) and a lone surrogate escape (``\\ud800``, which UTF-8 cannot store).
    """
    try:
        parsed = loads_strict(value)
        if not isinstance(parsed, dict | list):
            return value
        pretty = json.dumps(parsed, indent=2, ensure_ascii=False, allow_nan=False)
        pretty.encode("utf-8")
    except (JsonTextError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return value
    return pretty
