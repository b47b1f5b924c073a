"""The Jinja sandbox request-body templates run in, and its limits.

:mod:`billbee_provider.customers.template` compiles a template's leaves in a
:class:`Sandbox` (Jinja's immutable sandbox, with errors instead of silence for unsafe
access) and renders each row inside :func:`step_budget`. The author of a template is
trusted as much as the DAG's author; the limits stop mistakes (a runaway loop, a huge
repetition), not attacks:

* ``range`` gives at most :data:`MAX_RANGE` items;
* a row makes at most :data:`MAX_STEPS` loop iterations and calls over all leaves
  (nested loops, recursive macros): every call counts, and every ``{% for %}`` counts
  its iterations once :func:`count_loop_steps` has rewritten the template;
* ``*`` repeating a string or list, ``*`` of integers and ``**``, are bounded;
* a text or list the template builds has at most ``max_output_chars`` characters or
  items, checked *before* it is built (:mod:`~billbee_provider.customers.jinja_limits`):
  ``%`` and ``format`` (widths and precisions too), ``str.format``, padding
  (``center``, ``ljust``, ``rjust``, ``zfill``, ``expandtabs``, ``indent``,
  ``wordwrap``), ``replace``, ``~``, ``+``, ``join``, ``sum``, escaping, a list or
  object written as text, and what a ``{% set %}`` block, macro or filter block
  captures; ``str.translate``, ``int.to_bytes`` beyond the limit and the
  ``urlize`` filter (HTML links) are refused;
* a row's leaves write at most :data:`MAX_ROW_CHARS` characters through ``{{ }}``
  altogether (captured blocks included);
* a leaf renders at most ``max_output_chars`` characters (:class:`OutputTooLong`).

A template sees the row as a :class:`Row`. This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import update_wrapper
from typing import Any, Final, NoReturn

from jinja2 import ChainableUndefined, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from billbee_provider.customers import jinja_limits as limits
from billbee_provider.customers.jinja_filters import bounded_filters
from billbee_provider.customers.jinja_limits import TooLarge

#: Default limit of the characters one leaf may render to.
MAX_OUTPUT_CHARS: Final = 10_000
#: The most items ``range`` may give.
MAX_RANGE: Final = 10_000
#: The most bits an integer ``**`` may produce.
MAX_POWER_BITS: Final = 4_096
#: The most loop iterations and calls the leaves of one row may make together.
MAX_STEPS: Final = 50_000
#: The most characters the ``{{ }}`` of one row's leaves may write altogether.
MAX_ROW_CHARS: Final = 1_000_000

# The filter the compiler wraps around every loop's iterable, to count its steps.
_STEP_FILTER: Final = "billbee_count_steps"
# The filter every ``a ~ b`` becomes, to bound the concatenation.
_CONCAT_FILTER: Final = "billbee_concat"


class OutputTooLong(SecurityError):
    """A leaf rendered more characters than allowed."""


class _Steps:
    """What is left of :data:`MAX_STEPS` while one row renders."""

    def __init__(self) -> None:
        self.left = MAX_STEPS
        self.chars_left = MAX_ROW_CHARS

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise SecurityError(f"more than {MAX_STEPS} loop iterations and calls are not allowed")

    def write(self, chars: int) -> None:
        self.chars_left -= chars
        if self.chars_left < 0:
            raise TooLarge(f"writing more than {MAX_ROW_CHARS} characters for one row is not allowed")


_STEPS: ContextVar[_Steps | None] = ContextVar("billbee_template_steps", default=None)


@contextmanager
def step_budget() -> Iterator[None]:
    """Give the leaves rendered inside one budget of :data:`MAX_STEPS` (one per row)."""
    token = _STEPS.set(_Steps())
    try:
        yield
    finally:
        _STEPS.reset(token)


def _take_step() -> None:
    steps = _STEPS.get()
    if steps is not None:
        steps.take()


@pass_context  # also keeps the compiler from running it on constant lists
def _count_steps(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _take_step()
        yield item


class Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with errors instead of silence for unsafe access, and size limits.

    :param max_output_chars: the most characters one leaf may render to, and the most
        characters or items any text or list the template builds may have.
    """

    # Intercepted operators are also never constant-folded at compile time, so
    # ``{{ 'x' * 10**9 }}`` cannot allocate a gigabyte while compiling either.
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, max_output_chars: int) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=False, finalize=self._finalize)
        self.max_output_chars = max_output_chars
        self.globals["range"] = _bounded_range
        # lipsum(n) writes n paragraphs: no use in a customer body, only a way to hang.
        self.globals.pop("lipsum", None)
        # urlize writes HTML links (no use in a customer body) and repeats its target per link.
        self.filters.pop("urlize", None)
        self.filters.update(bounded_filters(self.filters, max_output_chars))
        self.filters[_STEP_FILTER] = _count_steps
        self.filters[_CONCAT_FILTER] = _bounded_concat(max_output_chars)
        # What a {% set %} block, a macro, a call or filter block captured, joined.
        self.concat = self._concat  # type: ignore[assignment, unused-ignore]

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        # Every template and expression is compiled through here: count its loops,
        # bound its "~", whichever way it was parsed.
        _Rewriter().visit(count_loop_steps(source))
        return super()._generate(source, name, filename, defer_init)

    def _finalize(self, value: Any) -> Any:
        # Every {{ }} output passes here before it becomes text (captured ones too).
        limits.check_text(value, self.max_output_chars)
        steps = _STEPS.get()
        if steps is not None:
            steps.write(len(value) if isinstance(value, str) else limits.text_size(value, MAX_ROW_CHARS))
        return value

    def _concat(self, parts: Iterable[str]) -> str:
        pieces = list(parts)
        limits.check_size(sum(map(len, pieces)), self.max_output_chars, "writing a block or macro")
        return "".join(pieces)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        owner = value.__self__
        formatter: _BoundedFormatter | _BoundedEscapeFormatter
        if isinstance(owner, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _BoundedFormatter(self)
        formatter.limit = self.max_output_chars
        is_format_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs = args[0]
                args = ()
            return type(owner)(formatter.vformat(owner, args, kwargs))  # type: ignore[no-any-return]

        return update_wrapper(bounded, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        # The default returns an undefined that ChainableUndefined renders as "":
        # a template reaching for internals would silently "work". Fail instead.
        hint = f"; for a column of that name write row[{attribute!r}]" if isinstance(obj, Row) else ""
        raise SecurityError(f"access to attribute {attribute!r} is not allowed{hint}")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _take_step()  # every call: a macro calling itself twice cannot run for hours
        args = limits.check_method_call(obj, args, kwargs, self.max_output_chars)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limit = self.max_output_chars
        if operator == "*":
            _check_repeat(left, right, limit)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str | bytes):
            limits.check_percent_format(left, right, limit)
        elif operator == "+":
            _check_add(left, right, limit)
        return super().call_binop(context, operator, left, right)


class _BoundedFormatter(limits.BoundedFormatting, SandboxedFormatter):
    """``str.format`` of the sandbox, within the limits."""


class _BoundedEscapeFormatter(limits.BoundedFormatting, SandboxedEscapeFormatter):
    """``Markup.format`` of the sandbox, within the limits."""


class _Rewriter(NodeTransformer):
    """Turns every ``a ~ b ~ c`` into the bounded concatenation filter."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


def _bounded_concat(limit: int) -> Callable[..., str]:
    @pass_context  # also keeps the compiler from running it on constants
    def concat(context: Context, items: list[Any]) -> str:
        limits.check_size(limits.joined_size(items, "", limit), limit, "concatenating (~)")
        return markup_join(items) if context.eval_ctx.autoescape else str_join(items)

    return concat


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
        repeats = isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int)
        if repeats and len(sequence) * times > limit:
            raise SecurityError(f"repeating to more than {limit} items is not allowed")
    integers = isinstance(left, int) and isinstance(right, int)
    if integers and left.bit_length() + right.bit_length() > MAX_POWER_BITS:
        raise SecurityError(f"a product of more than {MAX_POWER_BITS} bits is not allowed")


def _check_power(base: Any, exponent: Any) -> None:
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and exponent > 0 and base.bit_length() * exponent > MAX_POWER_BITS:
        raise SecurityError(f"a power of more than {MAX_POWER_BITS} bits is not allowed")


def _check_add(left: Any, right: Any, limit: int) -> None:
    for kinds in (str, bytes, list, tuple):
        if isinstance(left, kinds) and isinstance(right, kinds):
            limits.check_size(len(left) + len(right), limit, "concatenating (+)")


def count_loop_steps(tree: nodes.Template) -> nodes.Template:
    """Make every ``{% for %}`` count its iterations against :data:`MAX_STEPS`.

    A recursive loop's ``loop(children)`` iterates ``children``: those count as well.

    :param tree: a template parsed by a :class:`Sandbox`; changed in place and returned.
    """
    for loop in tree.find_all(nodes.For):
        loop.iter = _counted(loop.iter)
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "loop" and len(call.args) == 1:
            call.args[0] = _counted(call.args[0])
    return tree


def _counted(iterable: nodes.Node) -> nodes.Filter:
    return nodes.Filter(iterable, _STEP_FILTER, [], [], None, None, lineno=iterable.lineno)


class Row:
    """What a template sees as ``row``: columns as attributes and items.

    Not a dict, on purpose: ``row.items`` or ``row.values`` must be the columns named so,
    not dict methods.

    :param fields: the row's values by column name.
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
        # Else "<...Row object at 0x7f...>" would go to Billbee as, say, the street.
        raise TypeError(
            "an object column cannot be written as text; write one of its fields, e.g. row.x.city"
        )

    def _as_dict(self) -> dict[str, Any]:
        # Private, so that a column named like it is not shadowed (see __getattr__).
        return dict(self._fields)


def row_fields(row: Row) -> dict[str, Any]:
    """The columns of ``row`` as a dict (``Row`` has no public method: names are columns)."""
    return row._as_dict()


def _wrap(value: Any) -> Any:
    return Row(value) if isinstance(value, Mapping) else value
