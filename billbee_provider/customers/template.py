"""Map rows of any shape to Billbee customer bodies with a request-body template.

For sources whose columns are not Billbee's field paths. A template is a nested dict in
Billbee's shape whose string leaves are Jinja over ``row``::

    {
        "Name": "{{ row.first_name }} {{ row.last_name }}",
        "Email": "{{ row.email | lower }}",
        "Type": "{{ row.kind | int }}",
        "Address": {"City": "{{ row.city }}", "CountryCode": "{{ row.country | upper }}"},
    }

Rules, per leaf:

* A leaf that is one expression, ``{{ ... }}`` (surrounding whitespace allowed), keeps
  the expression's Python type: ``{{ row.n }}`` with an int ``n`` gives an int, and with
  the CSV string ``"1"`` the string ``"1"``. No schema conversion is applied here: write
  ``{{ row.kind | int }}`` for an integer field. (``| int`` turns a missing or bad value
  into ``0``; guard it with ``{{ row.kind | int if row.kind }}`` if ``0`` is wrong.)
* A leaf with text around or between expressions renders to a string.
* Numbers and booleans pass through; ``null`` means "not set". Lists are templated
  element by element.
* Values go into the body as Python objects, never through JSON text: a quote or a
  brace in the data cannot break the body.
* An empty result (``""``, whitespace only, ``None``, a missing column) is left out, and
  so is an object or list left empty. A missing column is not an error: ``row.x`` of a
  missing ``x`` is undefined and renders empty.

The template is compiled once, in an immutable sandbox: syntax errors, unknown
filters, unknown names (``{{ name }}`` for ``{{ row.name }}``, ``self``, ``lipsum``) and
nesting deeper than :data:`MAX_DEPTH` raise :class:`TemplateError` naming the leaf, and
so does any ``__dunder__`` access (``row.__class__``). Other private attributes fail
when rendered. Render errors of one row (division by zero, a type error, a private
attribute) become that row's problems, never showing row values. The author of a
template is trusted as much as the DAG's author; the limits below stop mistakes (a
runaway loop, a huge repetition), not attacks:

* ``range`` gives at most :data:`MAX_RANGE` items;
* a row makes at most :data:`MAX_STEPS` loop iterations and calls over all leaves
  (nested loops, recursive macros);
* ``*`` repeating a string or list, ``*`` of integers and ``**``, are bounded;
* every text or list the template builds (``%`` and ``format`` with their widths
  and precisions, padding, ``~``, ``+``, ``join``, ``replace``, a list written as
  text, a ``{% set %}`` block or macro) has at most ``max_output_chars`` characters
  or items, checked before it is built;
* a leaf renders at most ``max_output_chars`` characters.

The sandbox and these limits are in :mod:`billbee_provider.customers.jinja_sandbox`;
this module compiles the template's tree and renders rows. It does not import Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final, TypeAlias

from jinja2 import Template, TemplateSyntaxError, meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError

from billbee_provider.customers.jinja_limits import text_size
from billbee_provider.customers.jinja_sandbox import (
    MAX_OUTPUT_CHARS,
    MAX_POWER_BITS,
    MAX_RANGE,
    MAX_STEPS,
    OutputTooLong,
    Row,
    Sandbox,
    row_fields,
    step_budget,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_OUTPUT_CHARS",
    "MAX_POWER_BITS",
    "MAX_RANGE",
    "MAX_STEPS",
    "BodyTemplate",
    "RowTemplateError",
    "TemplateError",
    "template_from_json",
]

#: The deepest a template's objects and lists may nest (a customer body needs 3).
MAX_DEPTH: Final = 32

#: The most digits a decimal from a row may have to become a JSON integer (as Python's int()).
_MAX_DECIMAL_DIGITS: Final = 4_300

#: The names a template may use besides its own variables and the sandbox's globals.
_NAMES: Final = frozenset({"row"})
_SINGLE_EXPRESSION: Final = re.compile(r"\s*\{\{[-+]?(.*?)[-+]?\}\}\s*", re.DOTALL)
# Exceptions whose text describes the template or a type, never a row's values; the
# text of any other exception (ValueError: "invalid literal ... 'Jürgen'") is withheld.
_SAFE_TEXT_ERRORS: Final = (
    SecurityError,
    UndefinedError,
    ZeroDivisionError,
    TypeError,
    OverflowError,
    RecursionError,
)


class TemplateError(ValueError):
    """The template cannot be compiled; the message names the leaf, e.g. ``Address.City: ...``."""


class RowTemplateError(ValueError):
    """The template failed on one row.

    :param problems: one ``<leaf path>: <reason>`` per failed leaf; no row values.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Empty:
    """A leaf's result that means "leave the field out"."""


_EMPTY: Final = _Empty()


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A compiled string leaf: ``evaluate(row)`` gives the value or raises."""

    path: str
    evaluate: Callable[[Row], Any]


@dataclass(frozen=True, slots=True)
class _Constant:
    value: Any


@dataclass(frozen=True, slots=True)
class _Object:
    fields: tuple[tuple[str, _Node], ...]


@dataclass(frozen=True, slots=True)
class _Array:
    items: tuple[_Node, ...]


_Node: TypeAlias = "_Leaf | _Constant | _Object | _Array"


class BodyTemplate:
    """A request-body template, compiled once, rendered per row.

    :param template: a dict in Billbee's shape whose string leaves are Jinja over ``row``.
    :param max_output_chars: the most characters one leaf may render to.
    :raises TemplateError: if the template is not a JSON object or a leaf does not compile.
    """

    def __init__(self, template: Mapping[str, Any], *, max_output_chars: int = MAX_OUTPUT_CHARS) -> None:
        if not isinstance(template, Mapping):
            raise TemplateError("<template>: must be a JSON object in the shape of a Billbee customer")
        self._env = Sandbox(max_output_chars)
        self._root = _compile(self._env, template, ())

    def render_row(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Render the body of one row, collecting the problems of failed leaves.

        :param row: the row's values by column name.
        :return: the body (failed and empty leaves left out) and one
            ``<leaf path>: <reason>`` per failed leaf.
        """
        problems: list[str] = []
        with step_budget():
            body = _render(self._root, Row(row), self._env.max_output_chars, problems)
        return (body if isinstance(body, dict) else {}), problems

    def render(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Render the body of one row.

        :param row: the row's values by column name.
        :return: the body, empty leaves left out.
        :raises RowTemplateError: if a leaf fails on this row.
        """
        body, problems = self.render_row(row)
        if problems:
            raise RowTemplateError(problems)
        return body


def template_from_json(
    source: str | Mapping[str, Any], *, max_output_chars: int = MAX_OUTPUT_CHARS
) -> BodyTemplate:
    """Build a :class:`BodyTemplate` from JSON text or an already decoded mapping.

    :param source: the template as JSON text or as a mapping.
    :param max_output_chars: the most characters one leaf may render to.
    :return: the compiled template.
    :raises TemplateError: if the text is not JSON or the template does not compile.
    """
    if not isinstance(source, str):
        return BodyTemplate(source, max_output_chars=max_output_chars)
    try:
        decoded = json.loads(source)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"<template>: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError:  # an integer of more digits than Python reads
        raise TemplateError("<template>: not valid JSON (a number has too many digits)") from None
    except RecursionError:
        raise TemplateError(f"<template>: nested more than {MAX_DEPTH} levels deep") from None
    return BodyTemplate(decoded, max_output_chars=max_output_chars)


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path) or "<template>"


def _compile(env: Sandbox, value: Any, path: tuple[str | int, ...]) -> _Node:
    if len(path) > MAX_DEPTH:
        raise TemplateError(f"{_dotted(path[:MAX_DEPTH])}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TemplateError(f"{_dotted(path)}: object keys must be strings")
        return _Object(tuple((key, _compile(env, child, (*path, key))) for key, child in value.items()))
    if isinstance(value, list | tuple):
        return _Array(tuple(_compile(env, child, (*path, index)) for index, child in enumerate(value)))
    if isinstance(value, str):
        return _compile_text(env, value, _dotted(path))
    if value is None or isinstance(value, bool | int | float):
        return _Constant(value)
    raise TemplateError(f"{_dotted(path)}: a {type(value).__name__} is not a JSON value")


def _compile_text(env: Sandbox, text: str, path: str) -> _Leaf:
    try:
        tree = env.parse(text)
        _refuse_private_access(tree, path)
        _refuse_unknown_names(tree, path)
        single = _SINGLE_EXPRESSION.fullmatch(text)
        if single:
            with_native_type = _native_leaf(env, single.group(1), path)
            if with_native_type is not None:
                return with_native_type
        template = env.from_string(tree)  # the sandbox counts its loops and bounds it
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{path}: {exc.message}") from None
    except (RecursionError, SyntaxError):  # Jinja's parser or Python's compiler gave up
        raise TemplateError(f"{path}: the expression is nested too deeply") from None
    except SecurityError as exc:  # a limit already broken by constants, e.g. a huge literal list
        raise TemplateError(f"{path}: {exc}") from None
    return _Leaf(path, lambda row: _render_text(template, row, env.max_output_chars))


def _native_leaf(env: Sandbox, expression: str, path: str) -> _Leaf | None:
    """Compile ``{{ expression }}`` to keep its type; ``None`` if it is really several."""
    try:
        compiled = env.compile_expression(expression, undefined_to_none=True)
    except TemplateSyntaxError:
        # "{{ a }} and {{ b }}" also matches {{...}}; its inside is no expression.
        return None
    return _Leaf(path, lambda row: _evaluate(compiled, row, env.max_output_chars))


def _refuse_private_access(tree: nodes.Template, path: str) -> None:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name: object = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        if isinstance(name, str) and name.startswith("__"):
            raise TemplateError(f"{path}: access to {name!r} is not allowed")


def _refuse_unknown_names(tree: nodes.Template, path: str) -> None:
    """Refuse names that are neither ``row``, a global, nor set by the template itself.

    ``{{ name }}`` for ``{{ row.name }}`` would otherwise render empty without a word;
    ``self`` (the template's blocks) and ``lipsum`` are no use in a customer body.
    """
    unknown = set(meta.find_undeclared_variables(tree)) - _NAMES
    unknown.update(node.name for node in tree.find_all(nodes.Name) if node.name == "self")
    if unknown:
        names = ", ".join(repr(name) for name in sorted(unknown))
        raise TemplateError(
            f"{path}: unknown name {names}; write row.<column> or row['<column>'] for a column"
        )


def _evaluate(expression: TemplateExpression, row: Row, limit: int) -> Any:
    result = expression(row=row)
    # A list or object counts as the JSON text it becomes: [s] * 10000 is 10000 s's.
    size = len(result) if isinstance(result, str) else text_size(result, limit)
    if size > limit:
        raise OutputTooLong(f"renders more than {limit} characters")
    return _plain(result)


def _render_text(template: Template, row: Row, limit: int) -> str:
    parts: list[str] = []
    size = 0
    # Generated piece by piece, so a runaway loop stops at the limit, not at the end.
    for part in template.generate(row=row):
        size += len(part)
        if size > limit:
            raise OutputTooLong(f"renders more than {limit} characters")
        parts.append(part)
    return "".join(parts)


def _plain(value: Any) -> Any:
    """Turn an expression's result into JSON types (dates to ISO text, decimals to numbers)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # also unwraps Markup
    if isinstance(value, Row):
        return _plain(row_fields(value))
    if isinstance(value, Decimal) and value.is_finite():
        if value.adjusted() > _MAX_DECIMAL_DIGITS:  # int() of 1E+999999999 would take minutes
            raise OverflowError(f"a number of more than {_MAX_DECIMAL_DIGITS} digits is not a JSON value")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(child) for child in value]
    raise TypeError(f"the expression gives a {type(value).__name__}, which is not a JSON value")


def _render(node: _Node, row: Row, limit: int, problems: list[str]) -> Any:
    if isinstance(node, _Leaf):
        try:
            value = node.evaluate(row)
        except Exception as exc:  # any failure of the template code on this row
            problems.append(f"{node.path}: {_reason(exc)}")
            return _EMPTY
        return _EMPTY if _is_empty(value) else value
    if isinstance(node, _Constant):
        return _EMPTY if node.value is None else node.value
    if isinstance(node, _Object):
        rendered = ((key, _render(child, row, limit, problems)) for key, child in node.fields)
        fields = {key: value for key, value in rendered if value is not _EMPTY}
        return fields or _EMPTY
    items = [value for child in node.items if (value := _render(child, row, limit, problems)) is not _EMPTY]
    return items or _EMPTY


def _is_empty(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, dict | list) and not value)


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):  # its text depends on where the stack ran out
        return "a macro or loop calls itself too deeply (maximum recursion depth exceeded)"
    if isinstance(exc, _SAFE_TEXT_ERRORS):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__} (details withheld: they may contain row data)"
