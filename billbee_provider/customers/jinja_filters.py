"""Jinja's built-in filters, wrapped so that none builds more than the sandbox allows.

:func:`bounded_filters` returns replacements for the filters that can make a text or
list much larger than their input (``center``, ``indent``, ``wordwrap``, ``format``,
``replace``, ``join``, ``sum``, ``batch``, ``slice``, ``tojson``, the escaping
filters) and for those that turn a list or object into text (``string``, ``pprint``,
``lower`` ...). Each checks the size with
:mod:`~billbee_provider.customers.jinja_limits` first, then calls Jinja's own filter.
Filters whose output cannot outgrow their input (``truncate``, ``trim``, ``first``,
``length`` ...) are left as they are, apart from the text check of a non-string input.

This module does not import Airflow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final

from jinja2 import pass_eval_context
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext

from billbee_provider.customers import jinja_limits as limits

#: Filters that write their (first) argument as text, so a list or object given to
#: them must be small enough as text.
_TEXT_FILTERS: Final = frozenset(
    {
        "capitalize",
        "e",
        "escape",
        "filesizeformat",
        "forceescape",
        "lower",
        "pprint",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "wordcount",
        "xmlattr",
    }
)

_Filter = Callable[..., Any]


def bounded_filters(filters: Mapping[str, _Filter], limit: int) -> dict[str, _Filter]:
    """Wrap the filters that could build more than ``limit`` characters or items.

    :param filters: the environment's filters (Jinja's built-ins).
    :param limit: the most characters or items a filter may build.
    :return: the replacements, by filter name (only for names in ``filters``).
    """
    wrapped: dict[str, _Filter] = {}
    for name in _TEXT_FILTERS & filters.keys():
        wrapped[name] = _text_checked(filters[name], limit)
    for name in ("e", "escape", "forceescape"):
        if name in filters:
            wrapped[name] = _escape_checked(wrapped[name], limit)
    makers: dict[str, Callable[[_Filter, int], _Filter]] = {
        "center": _center,
        "indent": _indent,
        "wordwrap": _wordwrap,
        "format": _format,
        "replace": _replace,
        "join": _join,
        "sum": _sum,
        "batch": _batch,
        "slice": _batch,
        "tojson": _tojson,
    }
    for name, make in makers.items():
        if name in filters:
            wrapped[name] = make(filters[name], limit)
    return wrapped


def _keeps_kind(original: _Filter, wrapper: _Filter) -> _Filter:
    # Jinja passes the context / eval context / environment by a marker in the function's
    # __dict__ (``jinja_pass_arg``), which update_wrapper copies with the name and doc.
    return functools.update_wrapper(wrapper, original)


def _split(original: _Filter, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any, tuple[Any, ...]]:
    """(the passed context, if any), the filtered value, the other arguments."""
    if getattr(original, "jinja_pass_arg", None) is not None:
        return args[:1], args[1], args[2:]
    return (), args[0], args[1:]


def _text_checked(original: _Filter, limit: int) -> _Filter:
    def checked(*args: Any, **kwargs: Any) -> Any:
        _, value, _ = _split(original, args)
        limits.check_text(value, limit)
        return original(*args, **kwargs)

    return _keeps_kind(original, checked)


def _escape_checked(original: _Filter, limit: int) -> _Filter:
    def checked(value: Any) -> Any:
        limits.check_size(limits.escaped_size(value, limit), limit, "escaping")
        return original(value)

    return _keeps_kind(original, checked)


def _center(original: _Filter, limit: int) -> _Filter:
    def center(value: Any, width: int = 80) -> Any:
        limits.check_text(value, limit)
        limits.check_width(width, limit)
        return original(value, width)

    return _keeps_kind(original, center)


def _indent(original: _Filter, limit: int) -> _Filter:
    def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> Any:
        limits.check_text(value, limit)
        text = value if isinstance(value, str) else str(value)
        step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        limits.check_size(len(text) + (text.count("\n") + 2) * step, limit, "indenting")
        return original(value, width, first, blank)

    return _keeps_kind(original, indent)


def _wordwrap(original: _Filter, limit: int) -> _Filter:
    def wordwrap(environment: Any, value: Any, width: int = 79, *args: Any, **kwargs: Any) -> Any:
        limits.check_text(value, limit)
        text = value if isinstance(value, str) else str(value)
        wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
        separator = len(wrapstring) if isinstance(wrapstring, str) else len(environment.newline_sequence)
        lines = len(text.split()) + text.count("\n") + len(text) // max(_int(width), 1) + 1
        limits.check_size(len(text) + lines * separator, limit, "wrapping")
        return original(environment, value, width, *args, **kwargs)

    return _keeps_kind(original, wordwrap)


def _format(original: _Filter, limit: int) -> _Filter:
    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        limits.check_text(value, limit)
        text = value if isinstance(value, str) else str(value)
        limits.check_percent_format(text, kwargs or args, limit)
        return original(value, *args, **kwargs)

    return _keeps_kind(original, format_)


def _replace(original: _Filter, limit: int) -> _Filter:
    def replace(eval_ctx: EvalContext, value: Any, old: Any, new: Any, count: int | None = None) -> Any:
        limits.check_text(value, limit)
        text = value if isinstance(value, str) else str(value)
        size = limits.replaced_size(text, str(old), str(new), -1 if count is None else count)
        limits.check_size(size, limit, "replacing")
        return original(eval_ctx, value, old, new, count)

    return _keeps_kind(original, replace)


def _join(original: _Filter, limit: int) -> _Filter:
    @pass_eval_context
    def join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None) -> Any:
        items = list(value)
        if attribute is not None:
            items = list(map(make_attrgetter(eval_ctx.environment, attribute), items))
        limits.check_size(limits.joined_size(items, d, limit), limit, "joining")
        return original(eval_ctx, items, d)

    return join


def _sum(original: _Filter, limit: int) -> _Filter:
    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        items = list(iterable)
        if isinstance(start, list | tuple | str | bytes):
            size = len(start) + sum(len(item) if hasattr(item, "__len__") else 0 for item in items)
            limits.check_size(size, limit, "adding up (sum)")
        return original(environment, items, attribute, start)

    return _keeps_kind(original, sum_)


def _batch(original: _Filter, limit: int) -> _Filter:
    # slice is an async variant: Jinja passes it an eval context first, batch nothing.
    def batch(*args: Any, **kwargs: Any) -> Any:
        _, _, rest = _split(original, args)
        count = rest[0] if rest else kwargs.get("linecount", kwargs.get("slices"))
        if isinstance(count, int) and count > limit:
            raise limits.TooLarge(f"batch or slice into more than {limit} items is not allowed")
        return original(*args, **kwargs)

    return _keeps_kind(original, batch)


def _tojson(original: _Filter, limit: int) -> _Filter:
    def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Any:
        step = indent if isinstance(indent, int) else 0
        limits.check_size(limits.indented_size(value, step, limit), limit, "writing JSON")
        return original(eval_ctx, value, indent)

    return _keeps_kind(original, tojson)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
