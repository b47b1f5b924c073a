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
* ``*`` repeating a string or list, and ``**``, are bounded;
* a leaf renders at most ``max_output_chars`` characters.

This module does not import Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final, NoReturn, TypeAlias

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Default limit of the characters one leaf may render to.
MAX_OUTPUT_CHARS: Final = 10_000
#: The most items ``range`` may give.
MAX_RANGE: Final = 10_000
#: The most bits an integer ``**`` may produce.
MAX_POWER_BITS: Final = 4_096
#: The most loop iterations and calls the leaves of one row may make together.
MAX_STEPS: Final = 50_000
#: The deepest a template's objects and lists may nest (a customer body needs 3).
MAX_DEPTH: Final = 32

#: The names a template may use besides its own variables and the sandbox's globals.
_NAMES: Final = frozenset({"row"})
# The filter the compiler wraps around every loop's iterable, to count its steps.
_STEP_FILTER: Final = "billbee_count_steps"
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


class _OutputTooLong(SecurityError):
    """A leaf rendered more characters than allowed."""


class _Steps:
    """What is left of :data:`MAX_STEPS` while one row renders."""

    def __init__(self) -> None:
        self.left = MAX_STEPS

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise SecurityError(f"more than {MAX_STEPS} loop iterations and calls are not allowed")


_STEPS: ContextVar[_Steps | None] = ContextVar("billbee_template_steps", default=None)


def _take_step() -> None:
    steps = _STEPS.get()
    if steps is not None:
        steps.take()


@pass_context  # also keeps the compiler from running it on constant lists
def _count_steps(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _take_step()
        yield item


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with errors instead of silence for unsafe access, and size limits."""

    # Intercepted operators are also never constant-folded at compile time, so
    # ``{{ 'x' * 10**9 }}`` cannot allocate a gigabyte while compiling either.
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, max_output_chars: int) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=False)
        self.max_output_chars = max_output_chars
        self.globals["range"] = _bounded_range
        # lipsum(n) writes n paragraphs: no use in a customer body, only a way to hang.
        self.globals.pop("lipsum", None)
        self.filters[_STEP_FILTER] = _count_steps

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        # The default returns an undefined that ChainableUndefined renders as "":
        # a template reaching for internals would silently "work". Fail instead.
        hint = f"; for a column of that name write row[{attribute!r}]" if isinstance(obj, _Row) else ""
        raise SecurityError(f"access to attribute {attribute!r} is not allowed{hint}")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _take_step()  # every call: a macro calling itself twice cannot run for hours
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right, self.max_output_chars)
        elif operator == "**":
            _check_power(left, right)
        return super().call_binop(context, operator, left, right)


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE} items is not allowed")
    return numbers


def _check_repeat(left: Any, right: Any, limit: int) -> None:
    for sequence, times in ((left, right), (right, left)):
        repeats = isinstance(sequence, str | list | tuple) and isinstance(times, int)
        if repeats and len(sequence) * times > limit:
            raise SecurityError(f"repeating to more than {limit} items is not allowed")


def _check_power(base: Any, exponent: Any) -> None:
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and exponent > 0 and base.bit_length() * exponent > MAX_POWER_BITS:
        raise SecurityError(f"a power of more than {MAX_POWER_BITS} bits is not allowed")


class _Row:
    """What a template sees as ``row``: columns as attributes and items.

    Not a dict, on purpose: ``row.items`` or ``row.values`` must be the columns named so,
    not dict methods.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            # Never an attribute: the sandbox then falls back to row[name], so a column
            # "_id" still works, and Python's and Jinja's dunder probes find nothing.
            raise AttributeError(name)
        try:
            return _wrap(self._fields[name])
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return _wrap(self._fields[name])

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __str__(self) -> str:
        # Else "<..._Row object at 0x7f...>" would go to Billbee as, say, the street.
        raise TypeError(
            "an object column cannot be written as text; write one of its fields, e.g. row.x.city"
        )

    def _as_dict(self) -> dict[str, Any]:
        # Private, so that a column named like it is not shadowed (see __getattr__).
        return dict(self._fields)


def _wrap(value: Any) -> Any:
    return _Row(value) if isinstance(value, Mapping) else value


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A compiled string leaf: ``evaluate(row)`` gives the value or raises."""

    path: str
    evaluate: Callable[[_Row], Any]


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
        self._env = _Sandbox(max_output_chars)
        self._root = _compile(self._env, template, ())

    def render_row(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Render the body of one row, collecting the problems of failed leaves.

        :param row: the row's values by column name.
        :return: the body (failed and empty leaves left out) and one
            ``<leaf path>: <reason>`` per failed leaf.
        """
        problems: list[str] = []
        token = _STEPS.set(_Steps())
        try:
            body = _render(self._root, _Row(row), self._env.max_output_chars, problems)
        finally:
            _STEPS.reset(token)
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


def _compile(env: _Sandbox, value: Any, path: tuple[str | int, ...]) -> _Node:
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


def _compile_text(env: _Sandbox, text: str, path: str) -> _Leaf:
    try:
        tree = env.parse(text)
        _refuse_private_access(tree, path)
        _refuse_unknown_names(tree, path)
        single = _SINGLE_EXPRESSION.fullmatch(text)
        if single:
            with_native_type = _native_leaf(env, single.group(1), path)
            if with_native_type is not None:
                return with_native_type
        template = env.from_string(_count_loop_steps(tree))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{path}: {exc.message}") from None
    except (RecursionError, SyntaxError):  # Jinja's parser or Python's compiler gave up
        raise TemplateError(f"{path}: the expression is nested too deeply") from None
    return _Leaf(path, lambda row: _render_text(template, row, env.max_output_chars))


def _native_leaf(env: _Sandbox, expression: str, path: str) -> _Leaf | None:
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


def _count_loop_steps(tree: nodes.Template) -> nodes.Template:
    """Make every ``{% for %}`` count its iterations against :data:`MAX_STEPS`.

    A recursive loop's ``loop(children)`` iterates ``children``: those count as well.
    """
    for loop in tree.find_all(nodes.For):
        loop.iter = _counted(loop.iter)
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "loop" and len(call.args) == 1:
            call.args[0] = _counted(call.args[0])
    return tree


def _counted(iterable: nodes.Node) -> nodes.Filter:
    return nodes.Filter(iterable, _STEP_FILTER, [], [], None, None, lineno=iterable.lineno)


def _evaluate(expression: TemplateExpression, row: _Row, limit: int) -> Any:
    value = _plain(expression(row=row))
    if isinstance(value, str) and len(value) > limit:
        raise _OutputTooLong(f"renders more than {limit} characters")
    return value


def _render_text(template: Template, row: _Row, limit: int) -> str:
    parts: list[str] = []
    size = 0
    # Generated piece by piece, so a runaway loop stops at the limit, not at the end.
    for part in template.generate(row=row):
        size += len(part)
        if size > limit:
            raise _OutputTooLong(f"renders more than {limit} characters")
        parts.append(part)
    return "".join(parts)


def _plain(value: Any) -> Any:
    """Turn an expression's result into JSON types (dates to ISO text, decimals to numbers)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # also unwraps Markup
    if isinstance(value, _Row):
        return _plain(value._as_dict())
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(child) for child in value]
    raise TypeError(f"the expression gives a {type(value).__name__}, which is not a JSON value")


def _render(node: _Node, row: _Row, limit: int, problems: list[str]) -> Any:
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
