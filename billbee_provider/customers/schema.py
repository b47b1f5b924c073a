"""Check a customer body against Billbee's ``CreateCustomerApiModel`` before it is sent.

The JSON Schema ``create_customer.schema.json`` (next to this module) (draft 2020-12) mirrors the
Swagger model of ``POST /api/v1/customers`` field by field. :class:`CustomerValidator`
checks the schema once, then reports *every* problem of a record as
``<dotted path>: <human reason>``, e.g.::

    Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code
    Emial: unknown field (not in the Billbee customer model); did you mean 'Email'?

Offending values are echoed, cut to 60 characters. Two formats are checked for real:

* ``date-time``: see :func:`is_valid_date_time` (Billbee also sends times without an
  offset, which jsonschema's RFC 3339 check would refuse);
* ``email``: see :func:`is_valid_email` (WHATWG, not jsonschema's ``"@" in s``).

They are the only formats the schema uses (:data:`CHECKED_FORMATS`); no other format
checker is consulted.

This module does not import Airflow.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any, Final

from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft202012Validator,
    FormatChecker,
)

from billbee_provider.api.errors import listed_problems, shorten
from billbee_provider.customers.schema_fast import compile_fast_check

SCHEMA_PACKAGE: Final = "billbee_provider.customers"
SCHEMA_RESOURCE: Final = "create_customer.schema.json"

#: How many characters of an offending value (or key) a message may show.
MAX_SHOWN_CHARS: Final = 60
#: How many problems an exception text lists before "... and K more problem(s)".

_Path = tuple[str | int, ...]
_Problem = tuple[_Path, str]

#: The WHATWG HTML "valid e-mail address" production, verbatim.
_EMAIL_RE: Final = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)
_DATE_TIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,7})?"
    r"(?:Z|[+-](\d{2}):(\d{2}))?",
    re.ASCII,
)
_DATE_TIME_HINT: Final = "expected e.g. 2022-08-17T09:47:25+00:00 or 2022-08-16T14:47:00"
_EMAIL_REASON: Final = "not a valid e-mail address (the value is not repeated: personal data)"
_FORMAT_REASONS: Final[Mapping[str, str]] = {
    "date-time": f"is not a date-time ({_DATE_TIME_HINT})",
}
_ENUM_LABELS: Final[Mapping[str, Mapping[object, str]]] = {
    "Type": {0: "end customer", 1: "business customer"},
    "AddressType": {1: "invoice address", 2: "shipping address"},
}
_EXPECTED: Final[Mapping[str, str]] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a JSON object",
    "array": "a JSON array",
    "null": "null",
}
_INT_WIDTHS: Final[Mapping[int, str]] = {
    -(2**31): "int32 ",
    2**31 - 1: "int32 ",
    -(2**63): "int64 ",
    2**63 - 1: "int64 ",
}


class CustomerValidationError(ValueError):
    """A customer body does not fit Billbee's model.

    :param problems: every problem, each ``<dotted path>: <reason>``.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(list(problems))
        self.problems: list[str] = list(problems)

    def __str__(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{count} {noun} in the customer body:"]
        return "\n  - ".join(lines + listed_problems(self.problems))


def is_valid_email(value: str) -> bool:
    """Tell whether ``value`` is a WHATWG HTML "valid e-mail address".

    The definition is followed exactly, on purpose: ASCII only (no internationalised
    addresses), no quoted local parts, no comments such as ``max(at)example.de``, and a
    domain *without* a dot (``info@localhost``) is accepted, as WHATWG accepts it. No
    extra top-level-domain rule is added.

    :param value: the text to check.
    :return: ``True`` if it is a valid address.
    """
    return _EMAIL_RE.fullmatch(value) is not None


def is_valid_date_time(value: str) -> bool:
    """Tell whether ``value`` is a date-time Billbee (.NET) understands.

    Accepted: ``YYYY-MM-DDTHH:MM:SS``, optionally with 1 to 7 fractional digits, and
    optionally ``Z`` or an offset ``+HH:MM``/``-HH:MM`` of at most 14 hours. Without an
    offset the time is local to Billbee, as in ``2022-08-16T14:47:00``. The date and
    time must exist (no month 13, no 30 February, no second 60).

    :param value: the text to check.
    :return: ``True`` if it is such a date-time.
    """
    match = _DATE_TIME_RE.fullmatch(value)
    if match is None:
        return False
    *parts, offset_hours, offset_minutes = match.groups()
    year, month, day, hour, minute, second = (int(part) for part in parts)
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return offset_hours is None or _offset_ok(int(offset_hours), int(offset_minutes))


def _offset_ok(hours: int, minutes: int) -> bool:
    return minutes < 60 and (hours, minutes) <= (14, 0)


def _check_email(instance: object) -> bool:
    return not isinstance(instance, str) or is_valid_email(instance)


def _check_date_time(instance: object) -> bool:
    return not isinstance(instance, str) or is_valid_date_time(instance)


#: Every ``format`` the schema uses, with the provider's own check. jsonschema's stock
#: checks are not used (neither its built-in ones nor those of its ``format-nongpl``
#: extra): its ``email`` only looks for ``@`` and its ``date-time`` demands an offset
#: Billbee does not. A test makes sure the schema uses no format missing here.
CHECKED_FORMATS: Final[Mapping[str, Callable[[object], bool]]] = {
    "email": _check_email,
    "date-time": _check_date_time,
}


def _format_checker() -> Any:
    """A FormatChecker that knows only :data:`CHECKED_FORMATS` (nothing global is changed)."""
    checker = FormatChecker(formats=())
    for name, check in CHECKED_FORMATS.items():
        checker.checks(name)(check)
    return checker


@functools.cache
def _schema_text() -> str:
    return files(SCHEMA_PACKAGE).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """Return the customer JSON Schema (the file is read once; each call gets a fresh copy).

    :return: the parsed ``create_customer.schema.json``.
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


class CustomerValidator:
    """Validates customer bodies; build it once and reuse it for every record.

    :param schema: the schema to use; the packaged one by default.
    :raises jsonschema.exceptions.SchemaError: if the schema itself is invalid.
    """

    def __init__(self, schema: Mapping[str, Any] | None = None) -> None:
        self._schema = copy.deepcopy(dict(schema)) if schema is not None else load_schema()
        Draft202012Validator.check_schema(self._schema)
        self._validator = Draft202012Validator(self._schema, format_checker=_format_checker())
        #: A quick "certainly valid" test of the schema, or ``None`` if it uses a keyword
        #: the fast path does not know (then every body takes the full validator).
        self._certainly_valid = compile_fast_check(self._schema, CHECKED_FORMATS)

    def problems(self, body: object) -> list[str]:
        """List every problem of ``body``, sorted by path, then by message.

        A value of the wrong type is reported once, by its type problem only.

        :param body: the decoded JSON body of one customer.
        :return: ``<dotted path>: <reason>`` lines; empty if the body is valid.
        """
        if self._certainly_valid is not None and self._certainly_valid(body):
            return []  # the common case: a valid body needs none of the work below
        errors = list(self._validator.iter_errors(body))
        mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
        found: set[_Problem] = set()
        for error in errors:
            if error.validator == "type" or tuple(error.absolute_path) not in mistyped:
                found.update(_describe(error))
        return [_render(problem) for problem in sorted(found, key=_sort_key)]

    def validate(self, body: object) -> None:
        """Raise if ``body`` has any problem.

        :param body: the decoded JSON body of one customer.
        :raises CustomerValidationError: listing every problem.
        """
        problems = self.problems(body)
        if problems:
            raise CustomerValidationError(problems)


@functools.cache
def get_validator() -> CustomerValidator:
    """Return the process-wide :class:`CustomerValidator` (built on first use).

    :return: the shared validator.
    """
    return CustomerValidator()


def _describe(error: Any) -> list[_Problem]:
    path: _Path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        return _unknown_fields(path, error.instance, error.schema)
    reason = _REASONS.get(str(error.validator), _fallback_reason)
    return [(path, reason(error))]


def _unknown_fields(path: _Path, instance: Any, schema: Mapping[str, Any]) -> list[_Problem]:
    allowed = list(schema.get("properties", {}))
    model = schema.get("title", "Billbee")
    return [
        ((*path, str(key)), _unknown_reason(str(key), allowed, model))
        for key in instance
        if key not in allowed
    ]


def _unknown_reason(key: str, allowed: list[str], model: str) -> str:
    reason = f"unknown field (not in the {model} model)"
    by_lower = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1)
    return f"{reason}; did you mean {by_lower[close[0]]!r}?" if close else reason


def _type_reason(error: Any) -> str:
    wanted = error.validator_value
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    expected = " or ".join(_EXPECTED.get(name, name) for name in names)
    return f"expected {expected}, got {_describe_value(error.instance)}"


def _enum_reason(error: Any) -> str:
    field = str(error.absolute_path[-1]) if error.absolute_path else ""
    if field == "CountryCode":
        return _country_reason(error.instance, error.validator_value)
    labels = _ENUM_LABELS.get(field, {})
    allowed = ", ".join(_labelled(value, labels) for value in error.validator_value)
    return f"{_show(error.instance)} is not one of the allowed values {allowed}"


def _labelled(value: object, labels: Mapping[object, str]) -> str:
    label = labels.get(value)
    return f"{_show(value)} ({label})" if label else _show(value)


def _country_reason(value: object, codes: Sequence[str]) -> str:
    reason = f"{_show(value)} is not an ISO 3166-1 alpha-2 country code"
    fixed = value.strip().upper() if isinstance(value, str) else None
    return f"{reason}; did you mean {fixed!r}?" if fixed in codes else reason


def _bound_reason(error: Any) -> str:
    side, word = ("minimum", "below") if error.validator == "minimum" else ("maximum", "above")
    bound = error.validator_value
    width = _INT_WIDTHS.get(bound, "") if isinstance(bound, int) else ""
    return f"{_show(error.instance)} is {word} the {width}{side} {bound}"


def _format_reason(error: Any) -> str:
    fmt = str(error.validator_value)
    if fmt == "email":
        # An e-mail is personal data: problems go to task logs, so it is not repeated.
        return _email_reason(error.instance)
    reason = _FORMAT_REASONS.get(fmt, f"is not a valid {fmt}")
    return f"{_show(error.instance)} {reason}"


def _email_reason(value: object) -> str:
    """Why an e-mail is invalid, with a hint for non-ASCII (IDN) addresses, never the value.

    Billbee documents no support for internationalised addresses, and the WHATWG
    "valid e-mail address" is ASCII only. A domain can be written in its ASCII
    (punycode, ``xn--``) form, which is the same domain; the part before ``@`` cannot
    be converted: it must be ASCII.
    """
    if not isinstance(value, str) or value.isascii() or value.count("@") != 1:
        return _EMAIL_REASON
    local, domain = value.split("@")
    hints = []
    if not local.isascii():
        hints.append("the part before @ has non-ASCII characters and must be ASCII")
    if not domain.isascii():
        punycode = _punycode(domain)
        if punycode is not None and is_valid_email(f"{local if local.isascii() else 'x'}@{punycode}"):
            hints.append("the domain has non-ASCII characters; write it in its punycode form (xn--...)")
        else:
            hints.append("the domain has non-ASCII characters and has no valid punycode form")
    return f"{_EMAIL_REASON}: {'; '.join(hints)}"


def _punycode(domain: str) -> str | None:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _fallback_reason(error: Any) -> str:
    return shorten(str(error.message), 2 * MAX_SHOWN_CHARS)


_REASONS: Final[Mapping[str, Callable[[Any], str]]] = {
    "type": _type_reason,
    "enum": _enum_reason,
    "minimum": _bound_reason,
    "maximum": _bound_reason,
    "format": _format_reason,
}


def _json_type(value: object) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    names = {int: "integer", float: "number", str: "string", dict: "object", list: "array"}
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _describe_value(value: object) -> str:
    kind = _json_type(value)
    return kind if value is None else f"{kind} {_show(value)}"


def _show(value: object) -> str:
    """Render a value for a message, cut to :data:`MAX_SHOWN_CHARS` characters."""
    if isinstance(value, str):
        return shorten(repr(value), MAX_SHOWN_CHARS)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text, MAX_SHOWN_CHARS)


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(shorten(str(segment), MAX_SHOWN_CHARS) for segment in path) or "<body>"


def _render(problem: _Problem) -> str:
    path, message = problem
    return f"{_dotted(path)}: {message}"


def _sort_key(problem: _Problem) -> tuple[tuple[tuple[int, int, str], ...], str]:
    path, message = problem
    segments = tuple((0, s, "") if isinstance(s, int) else (1, 0, str(s)) for s in path)
    return segments, message
