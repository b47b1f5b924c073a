"""Size limits of the template sandbox, checked *before* a string is built.

:mod:`billbee_provider.customers.jinja_sandbox` calls these before every operation
that can make a text (or a list) much larger than its inputs: ``%`` formatting and
the ``format`` filter, ``str.format``, padding (``center``, ``ljust``, ``rjust``,
``zfill``, ``expandtabs``, ``indent``, ``wordwrap``), ``replace``, ``~``, ``+``,
``join``, ``sum``, escaping, and turning a list or object into text. The rule is one
for all of them: *a text or list the template builds may have at most the limit's
characters or items* (the sandbox's ``max_output_chars``, 10,000 by default), and a
format width or precision may be at most the limit. Each check estimates the size
from its inputs (without building it) and raises :class:`TooLarge`, a Jinja
``SecurityError``, whose text names the operation and the limit, never a value.

This module does not import Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from string import Formatter
from typing import Any, Final

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined

#: The most digits a width or precision given as text may have before it is "too big".
_MAX_NUMBER_DIGITS: Final = 9
#: What one float conversion (``%f`` of 1e308) may need besides its precision.
_FLOAT_CHARS: Final = 330
#: The characters HTML escaping lengthens, and by how much.
_ESCAPE_GROWTH: Final = {"&": 4, "<": 3, ">": 3, '"': 4, "'": 4}
_FORMAT_SPEC_RE: Final = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d*))?(?P<type>[a-zA-Z%])?",
    re.DOTALL,
)


class TooLarge(SecurityError):
    """A template operation would build a text or list larger than allowed."""


def text_size(value: Any, budget: int) -> int:
    """Estimate the length of ``str(value)`` without building it.

    Lists, tuples, sets and mappings are walked (their items' sizes plus separators);
    the walk stops once the estimate passes ``budget``, so it costs at most ``budget``
    steps however large the value is. The estimate may be low for strings full of
    characters ``repr`` escapes, never by more than a small factor.

    :param value: any value a template may hold.
    :param budget: the size that is enough to decide "too large".
    :return: the estimated length (more than ``budget`` means "at least that").
    """
    total = 0
    stack = [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                stack.extend((key, child))
                total += 4
                if total > budget:
                    break
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= budget:
                stack.extend(item)
        else:
            total += _scalar_size(item)
    return total


def _scalar_size(value: Any) -> int:
    if value is None or isinstance(value, bool | Undefined):
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 25
    try:
        return len(str(value))
    except Exception:  # the real operation raises the same error, with a clearer text
        return 0


def check_size(size: int, limit: int, what: str) -> None:
    """Raise :class:`TooLarge` if ``size`` is over ``limit``.

    :param size: the estimated size of what is about to be built.
    :param limit: the most characters or items allowed.
    :param what: the operation, e.g. ``"concatenating"``.
    :raises TooLarge: ``<what> to more than <limit> characters is not allowed``.
    """
    if size > limit:
        raise TooLarge(f"{what} to more than {limit} characters is not allowed")


def check_text(value: Any, limit: int, what: str = "writing a list or object as text") -> None:
    """Refuse to turn a value that is not a string into a text longer than ``limit``."""
    if not isinstance(value, str):
        check_size(text_size(value, limit), limit, what)


def check_width(width: Any, limit: int) -> None:
    """Refuse padding to a width over ``limit`` (``'x'.center(10**10)``)."""
    if isinstance(width, int) and width > limit:
        raise TooLarge(f"padding to more than {limit} characters is not allowed")


def _number(digits: str | None, limit: int) -> int:
    if not digits:
        return 0
    if len(digits) > _MAX_NUMBER_DIGITS:
        return limit + 1
    return int(digits)


def _check_width_and_precision(width: int, precision: int, limit: int) -> None:
    if max(width, precision) > limit:
        raise TooLarge(f"a format width or precision of more than {limit} is not allowed")


def _conversion_size(conversion: str, value: Any, precision: int | None, limit: int) -> int:
    """The most characters one conversion of ``value`` gives, besides its width."""
    if conversion in "srab" or not conversion:
        size = text_size(value, limit)
        return min(size, precision) if precision is not None and conversion else size
    if conversion == "c":
        return 1
    if isinstance(value, Decimal) and value.is_finite():
        return abs(value.adjusted()) + len(value.as_tuple().digits) + (precision or 6) + 10
    if conversion in "eEfFgGn%" or isinstance(value, float):
        return _FLOAT_CHARS + (6 if precision is None else precision)
    digits = value.bit_length() // 3 + 3 if isinstance(value, int) else text_size(value, limit)
    return 2 * max(digits, precision or 0)  # "," / "_" grouping adds at most a third


def check_percent_format(template: str | bytes, args: Any, limit: int) -> None:
    """Check ``template % args`` (and the ``format`` filter) before it runs.

    Every width and precision (``%1000000000s``, ``%.1000000000f``, and ``*`` taken
    from ``args``) must be at most ``limit``, and the whole result at most ``limit``
    characters. Malformed templates pass: Python then raises its own error.

    :param template: the left operand of ``%``.
    :param args: the right operand.
    :param limit: the most characters allowed.
    :raises TooLarge: if a width, a precision or the result is too large.
    """
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    positional = list(args) if isinstance(args, tuple) else [args]
    mapping = args if not isinstance(args, tuple | str | bytes) and hasattr(args, "__getitem__") else None
    state = {"next": 0}

    def take() -> Any:
        index = state["next"]
        state["next"] = index + 1
        return positional[index] if index < len(positional) else None

    total = len(text)
    for key, width_text, precision_text, conversion in _percent_specs(text):
        if conversion == "%":
            continue
        width = take() if width_text == "*" else _number(width_text, limit)
        precision = take() if precision_text == "*" else _number(precision_text, limit)
        width = abs(width) if isinstance(width, int) else 0
        precision = abs(precision) if isinstance(precision, int) else 0
        _check_width_and_precision(width, precision, limit)
        value = _lookup(mapping, key) if key is not None else take()
        size = _conversion_size(conversion, value, precision if precision_text else None, limit)
        total += max(width, size)
        check_size(total, limit, "formatting")


def _lookup(mapping: Any, key: str) -> Any:
    try:
        return mapping[key] if mapping is not None else None
    except Exception:  # Python raises the same KeyError when it formats
        return None


def _percent_specs(text: str) -> Iterable[tuple[str | None, str, str, str]]:
    """The ``%`` conversions of ``text``: (mapping key, width, precision, conversion)."""
    position = text.find("%")
    while position >= 0:
        index = position + 1
        key = None
        if text[index : index + 1] == "(":
            depth, start = 1, index + 1
            index += 1
            while index < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[index], 0)
                index += 1
            key = text[start : index - 1]
        while index < len(text) and text[index] in "-+ #0":
            index += 1
        width, index = _spec_number(text, index)
        precision = ""
        if text[index : index + 1] == ".":
            precision, index = _spec_number(text, index + 1)
            precision = precision or "0"
        while index < len(text) and text[index] in "hlL":
            index += 1
        if index >= len(text):
            return
        yield key, width, precision, text[index]
        position = text.find("%", index + 1)


def _spec_number(text: str, index: int) -> tuple[str, int]:
    if text[index : index + 1] == "*":
        return "*", index + 1
    end = index
    while end < len(text) and text[end].isdigit():
        end += 1
    return text[index:end], end


class BoundedFormatting(Formatter):
    """Mixed into Jinja's sandboxed formatters: ``str.format`` within the limits.

    Every field's width and precision must be at most ``limit``, and the fields and
    literal text of one call at most ``limit`` characters together.
    """

    limit: int
    _written: int

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._written = len(format_string)
        check_size(self._written, self.limit, "formatting")
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        match = _FORMAT_SPEC_RE.fullmatch(format_spec)
        if match is None:  # a date's strftime spec, or a type's own mini-language
            size = text_size(value, self.limit) + 16 * len(format_spec)
        else:
            width = _number(match["width"], self.limit)
            has_precision = match["precision"] is not None
            precision = _number(match["precision"], self.limit)
            _check_width_and_precision(width, precision, self.limit)
            conversion = match["type"] or ""
            shown = precision if has_precision else None
            size = max(width, _conversion_size(conversion, value, shown, self.limit))
        self._written += size
        check_size(self._written, self.limit, "formatting")
        return super().format_field(value, format_spec)


def escaped_size(value: Any, limit: int) -> int:
    """The length of ``value`` after HTML escaping (exact for strings)."""
    if not isinstance(value, str):
        return 5 * text_size(value, limit)
    if hasattr(value, "__html__"):
        return len(value)
    return len(value) + sum(growth * value.count(char) for char, growth in _ESCAPE_GROWTH.items())


def replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    """The length of ``text.replace(old, new, count)``, computed without replacing."""
    if not all(isinstance(part, str | bytes) for part in (text, old, new)):
        return 0
    try:
        found = text.count(old) if old else len(text) + 1
    except TypeError:  # str and bytes mixed: Python refuses it the same way
        return 0
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def joined_size(items: list[Any], separator: Any, limit: int) -> int:
    """The length of ``separator.join(items)`` (items as text), with early stop."""
    total = len(separator) * max(len(items) - 1, 0) if isinstance(separator, str | bytes) else 0
    for item in items:
        total += len(item) if isinstance(item, str | bytes) else text_size(item, limit)
        if total > limit:
            break
    return total


def indented_size(value: Any, indent: int, limit: int) -> int:
    """Estimate the length of ``json.dumps(value, indent=indent)``, with early stop."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and total <= limit:
        item, depth = stack.pop()
        total += 2 + depth * indent
        if isinstance(item, Mapping):
            total += sum(text_size(key, limit) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        else:
            total += text_size(item, limit)
    return total


_PADDING_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill"})


def check_method_call(
    method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> tuple[Any, ...]:
    """Check a call of a string, bytes or integer method from a template.

    :param method: the called object (e.g. the bound method ``'x'.center``).
    :param args: its positional arguments.
    :param kwargs: its keyword arguments.
    :param limit: the most characters allowed.
    :return: the positional arguments to call with (an iterable given to ``join`` is
        read once here, so it is passed on as a list).
    :raises TooLarge: if the call would build too much, or is ``str.translate``.
    """
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, int) and not isinstance(owner, bool) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int) and length > limit:
            raise TooLarge(f"int.to_bytes of more than {limit} bytes is not allowed")
    if not isinstance(owner, str | bytes):
        return args
    if name in _PADDING_METHODS:
        check_width(args[0] if args else kwargs.get("width"), limit)
    elif name == "expandtabs":
        size = _tab_count(owner) * _int(args[0] if args else kwargs.get("tabsize", 8))
        check_size(len(owner) + size, limit, "expanding tabs")
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        check_size(replaced_size(owner, args[0], args[1], count), limit, "replacing")
    elif name == "join" and args:
        items = list(args[0])
        check_size(joined_size(items, owner, limit), limit, "joining")
        return (items, *args[1:])
    elif name == "translate" and isinstance(owner, str):
        raise TooLarge("str.translate is not allowed in a template (it can multiply a text's length)")
    return args


def _tab_count(text: str | bytes) -> int:
    return text.count("\t") if isinstance(text, str) else text.count(b"\t")


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
