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
* ``*`` repeating a string or list, and ``**``, are bounded;
* a leaf renders at most ``max_output_chars`` characters (:class:`OutputTooLong`).

A template sees the row as a :class:`Row`. This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, NoReturn

from jinja2 import ChainableUndefined, nodes, pass_context
from jinja2.exceptions import SecurityError
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

# The filter the compiler wraps around every loop's iterable, to count its steps.
_STEP_FILTER: Final = "billbee_count_steps"


class OutputTooLong(SecurityError):
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
        items ``*`` may repeat to.
    """

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
        hint = f"; for a column of that name write row[{attribute!r}]" if isinstance(obj, Row) else ""
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
