"""Where a value sits in a JSON text, for Json.NET-style "Path '...', line L, position P."

Python's :mod:`json` parses without keeping positions, so the binder, which works on
the parsed objects, asks here after the fact: :func:`value_end` walks the text along
a path of raw keys and indexes and returns where that value ends.
"""

from __future__ import annotations

import json
import re

PathStep = str | int

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def json_path(path: list[PathStep]) -> str:
    """Json.NET's spelling of a path, e.g. ``MetaData[0].TypeId``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def line_position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and the count of characters read on that line up to ``offset``."""
    offset = max(0, min(offset, len(text)))
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1)


def value_end(text: str, path: list[PathStep]) -> int:
    """Offset just past the JSON value at ``path`` (raw keys / indexes); 0 if not found."""
    try:
        index = _skip(text, 0)
        for step in path:
            found = _child(text, index, step)
            if found is None:
                return 0
            index = found
        return int(_DECODER.raw_decode(text, index)[1])
    except (ValueError, IndexError):
        return 0


def _child(text: str, index: int, step: PathStep) -> int | None:
    """Start offset of member ``step`` of the object/array starting at ``index``."""
    opener, closer = ("[", "]") if isinstance(step, int) else ("{", "}")
    if text[index] != opener:
        return None
    index, found, position = _skip(text, index + 1), None, 0
    while text[index] != closer:
        if isinstance(step, str):
            key, index = _DECODER.raw_decode(text, index)
            index = _skip(text, _skip(text, index) + 1)  # past the colon
            if key == step:
                found = index  # keep going: with duplicate keys the last one counts
        elif position == step:
            return index
        position += 1
        index = _skip(text, _DECODER.raw_decode(text, index)[1])
        if text[index] == ",":
            index = _skip(text, index + 1)
    return found


def _skip(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index
