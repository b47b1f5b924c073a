"""A fast "certainly valid" test of a JSON Schema, for the common case of a valid body.

:class:`~billbee_provider.customers.schema.CustomerValidator` asks it first: a body it
accepts has no problem to name, and the full ``jsonschema`` validator (about 4x slower on
the customer schema, see docs/performance.md) runs only for the others, to name every
problem. It is never less strict than the schema: when unsure it says ``False``.

This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

#: Keywords that never make a body invalid (annotations, and ``$defs`` read through ``$ref``).
_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "$comment",
        "title",
        "description",
        "readOnly",
        "writeOnly",
        "default",
        "examples",
        "deprecated",
    }
)
_FastCheck = Callable[[object], bool]


def compile_fast_check(
    schema: Mapping[str, Any], formats: Mapping[str, Callable[[object], bool]]
) -> _FastCheck | None:
    """A function that says ``True`` only for a body the schema certainly accepts.

    It knows the keywords the customer schema uses (``type``, ``properties``,
    ``additionalProperties``, ``items``, ``enum``, ``minimum``, ``maximum``, ``format``
    of ``formats``, local ``$ref``) and is stricter than the schema where
    JSON and Python disagree (a bool is never a number, an integral float never an
    integer, an enum value must have the member's exact type): ``False`` means only "not
    certain", and the full validator decides and names the problems. A schema with any
    other keyword (or a ``$ref`` outside ``#/$defs/``) gets ``None``: no fast path.

    :param schema: a draft 2020-12 schema (already checked).
    :param formats: the check of each ``format`` the schema may use (a body passes when it says so).
    :return: the check, or ``None``.
    """
    compiled: dict[str, _FastCheck] = {}

    def resolve(ref: str) -> _FastCheck:
        def check(value: object) -> bool:
            return compiled[ref](value)

        return check

    def compile_node(node: object) -> _FastCheck:
        if node is True:
            return lambda value: True
        if not isinstance(node, Mapping):
            raise _NoFastPath
        checks: list[_FastCheck] = []
        for keyword, argument in node.items():
            if keyword in _ANNOTATIONS:
                continue
            make = _FAST_KEYWORDS.get(keyword)
            if make is None:
                raise _NoFastPath
            checks.append(make(argument, node, compile_node, resolve, formats))
        if len(checks) == 1:
            return checks[0]
        return lambda value: all(check(value) for check in checks)

    try:
        root = compile_node(schema)
        for name, definition in schema.get("$defs", {}).items():
            compiled[f"#/$defs/{name}"] = compile_node(definition)
        for ref in _refs(schema):
            if ref not in compiled:
                raise _NoFastPath
    except _NoFastPath:
        return None
    return root


class _NoFastPath(Exception):
    """The schema uses something :func:`compile_fast_check` does not know."""


def _refs(node: object) -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


_EXACT_TYPES: Final[Mapping[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _fast_type(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    names = [argument] if isinstance(argument, str) else list(argument)
    if any(name not in _EXACT_TYPES for name in names):
        raise _NoFastPath
    allowed = tuple(t for name in names for t in _EXACT_TYPES[name])
    allows_bool = "boolean" in names

    def check(value: object) -> bool:
        return isinstance(value, allowed) and (allows_bool or not isinstance(value, bool))

    return check


def _fast_properties(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    known = {name: compile_node(sub) for name, sub in argument.items()}
    extra = node.get("additionalProperties", True)
    other: _FastCheck | None = None if extra is False else compile_node(extra)

    def check(value: object) -> bool:
        if not isinstance(value, dict):
            return True  # "properties" says nothing about other types ("type" does)
        for key, item in value.items():
            sub = known.get(key, other)
            if sub is None or not sub(item):
                return False
        return True

    return check


def _fast_additional(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    if "properties" in node:
        return lambda value: True  # checked together with "properties"
    sub: _FastCheck = (lambda value: False) if argument is False else compile_node(argument)

    def check(value: object) -> bool:
        return not isinstance(value, dict) or all(sub(item) for item in value.values())

    return check


def _fast_items(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    sub = compile_node(argument)
    return lambda value: not isinstance(value, list) or all(sub(item) for item in value)


def _fast_enum(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    members = {(type(member), member) for member in argument if isinstance(member, str | int | float | bool)}
    return lambda value: (type(value), value) in members if isinstance(value, str | int | float) else False


def _fast_bound(keyword: str) -> Callable[..., _FastCheck]:
    def make(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
        if isinstance(argument, bool) or not isinstance(argument, int | float):
            raise _NoFastPath
        below = keyword == "minimum"

        def check(value: object) -> bool:
            if isinstance(value, bool):
                return False  # not certain: let the full validator decide
            if not isinstance(value, int | float):
                return True  # a bound applies to numbers only
            return value >= argument if below else value <= argument

        return check

    return make


def _fast_format(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    check: _FastCheck | None = formats.get(argument)
    if check is None:
        raise _NoFastPath
    return check


def _fast_ref(argument: Any, node: Any, compile_node: Any, resolve: Any, formats: Any) -> _FastCheck:
    if not isinstance(argument, str) or not argument.startswith("#/$defs/"):
        raise _NoFastPath
    check: _FastCheck = resolve(argument)
    return check


_FAST_KEYWORDS: Final[Mapping[str, Callable[..., _FastCheck]]] = {
    "type": _fast_type,
    "properties": _fast_properties,
    "additionalProperties": _fast_additional,
    "items": _fast_items,
    "enum": _fast_enum,
    "minimum": _fast_bound("minimum"),
    "maximum": _fast_bound("maximum"),
    "format": _fast_format,
    "$ref": _fast_ref,
}
