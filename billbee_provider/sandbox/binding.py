"""Request-body model binding the way Billbee's ASP.NET Web API (with Json.NET) does it.

What clients rely on (API-FACTS "Response envelope"): keys bind case-insensitively,
unknown keys are ignored, numbers sent as strings are accepted for integer fields,
and a body that cannot be bound is refused with **400** ``{"Message", "ModelState"}``
(not enveloped). The messages imitate Json.NET's; their ``position`` is the end of
the offending value and may differ slightly from Billbee's.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from billbee_provider.sandbox.json_position import PathStep, json_path, line_position, value_end
from billbee_provider.sandbox.models import Kind, Model

#: Media types Billbee accepts for JSON bodies (Swagger ``consumes``).
JSON_MEDIA_TYPES = frozenset({"application/json", "text/json"})
#: ASP.NET names the bound parameter ``model``; ModelState keys start with it.
ROOT_KEY = "model"

_INT_RANGES = {Kind.INT32: (-(2**31), 2**31 - 1, "Int32"), Kind.INT64: (-(2**63), 2**63 - 1, "Int64")}
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*\Z")
#: ASP.NET Web API's JsonMediaTypeFormatter reads at most this many nested levels.
MAX_DEPTH = 256
# A \u escape of a UTF-16 surrogate: only then can a parsed string hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class BindingError(Exception):
    """The body could not be bound; ``model_state`` maps field paths to messages.

    :param model_state: e.g. ``{"model.Type": ["Error converting value ..."]}``.
    """

    def __init__(self, model_state: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in model_state.items()))
        self.model_state = model_state


class _Mismatch(Exception):
    """A value of the wrong type; the text is Json.NET's message without the path."""


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """Split a ``Content-Type`` header into the lower-cased media type and its charset."""
    kind, *params = (content_type or "").split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return kind.strip().lower(), charset


def bind_body(body: bytes, charset: str | None, model: Model) -> dict[str, Any]:
    """Decode, parse and bind a JSON request body to ``model``.

    :return: the bound fields by their canonical names; only keys the body named.
    :raises BindingError: for undecodable text, malformed JSON, a body that is not a
        JSON object, or values of the wrong type.
    """
    text = _decode(body, charset)
    payload = _parse(text)
    if not isinstance(payload, dict):
        raise BindingError({ROOT_KEY: [_root_message(payload, model, text)]})
    binder = _Binder(text)
    bound = binder.bind_object(payload, model, ROOT_KEY, [])
    if binder.errors:
        raise BindingError(binder.errors)
    return bound


def _decode(body: bytes, charset: str | None) -> str:
    try:
        # utf-8-sig: a leading byte-order mark is tolerated, as ASP.NET does.
        codec = (
            "utf-8-sig" if (charset or "utf-8").lower().replace("_", "-") in ("utf-8", "utf8") else charset
        )
        text = body.decode(codec or "utf-8-sig")
    except (LookupError, UnicodeError, ValueError) as exc:  # punycode & co. fail in their own ways
        raise BindingError(
            {ROOT_KEY: [f"The request body could not be decoded as {charset or 'UTF-8'}: {exc}"]}
        ) from None
    # Some codecs (unicode_escape, utf-16 of odd bytes) give lone surrogates: see below.
    return _LONE_SURROGATE.sub("\ufffd", text)


class _BadLiteral(ValueError):
    """A literal Json.NET does not read: ``NaN`` & co., or an integer too long for Python.

    :param literal: the literal's text, to find its position.
    :param message: Json.NET's message, without the path.
    """

    def __init__(self, literal: str, message: str) -> None:
        super().__init__(message)
        self.literal = literal


def _reject_constant(name: str) -> Any:
    raise _BadLiteral(name, f"Unexpected character encountered while parsing value: {name[0]}.")


def _read_integer(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        raise _BadLiteral(digits, f"JSON integer {digits} is too large or small for an Int64.") from None


def _parse(text: str) -> Any:
    try:
        # Decimal keeps "1.0" distinguishable from 1 and keeps the literal text.
        payload = json.loads(
            text, parse_float=Decimal, parse_int=_read_integer, parse_constant=_reject_constant
        )
        return _without_lone_surrogates(payload) if _SURROGATE_ESCAPE.search(text) else payload
    except RecursionError:
        line, pos = line_position(text, _depth_exceeded_at(text))
        message = f"The reader's MaxDepth of {MAX_DEPTH} has been exceeded."
        raise BindingError({ROOT_KEY: [f"{message} Path '', line {line}, position {pos}."]}) from None
    except json.JSONDecodeError as exc:
        found = (
            "Unexpected end when reading JSON."
            if exc.pos >= len(text)
            else (f"Unexpected character encountered while parsing value: {text[exc.pos]}.")
        )
        raise BindingError(
            {ROOT_KEY: [f"{found} Path '', line {exc.lineno}, position {exc.colno}."]}
        ) from None
    except _BadLiteral as exc:  # NaN / Infinity, which JSON does not have; huge integers
        line, pos = line_position(text, text.find(exc.literal) + 1)
        raise BindingError({ROOT_KEY: [f"{exc} Path '', line {line}, position {pos}."]}) from None


def _without_lone_surrogates(value: Any) -> Any:
    """Json.NET reads a lone surrogate escape (``"\\ud800"``) as U+FFFD; so does the sandbox.

    Kept, it could be neither stored nor answered: UTF-8 cannot carry it.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(key): _without_lone_surrogates(item) for key, item in value.items()}
    return value


def _depth_exceeded_at(text: str) -> int:
    """Offset of the first ``[`` or ``{`` nested deeper than :data:`MAX_DEPTH` (outside strings)."""
    depth, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = char == "\\", char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return offset + 1
        elif char in "]}":
            depth -= 1
    return len(text)


def _root_message(payload: Any, model: Model, text: str) -> str:
    line, pos = line_position(text, len(text.rstrip()))
    where = f"Path '', line {line}, position {pos}."
    if payload is None:
        return f"A JSON object is required as the request body. {where}"
    if isinstance(payload, list):
        return f"{_array_for_object(model.clr_name)} {where}"
    return f"Error converting value {_literal(payload)} to type '{model.clr_name}'. {where}"


class _Binder:
    """Binds nested JSON to models, collecting every error like ASP.NET's ModelState."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.errors: dict[str, list[str]] = {}

    def bind_object(
        self, value: dict[str, Any], model: Model, key: str, path: list[PathStep]
    ) -> dict[str, Any]:
        bound: dict[str, Any] = {}
        for raw_key, raw_value in value.items():
            spec = model.lookup(raw_key)
            if spec is None:
                continue  # unknown keys are ignored, as ASP.NET does
            # Keys differing only in case bind to one property: the last one wins.
            sub_key, sub_path = f"{key}.{spec.name}", [*path, raw_key]
            bound[spec.name] = self.bind_value(raw_value, spec.kind, spec.item, sub_key, sub_path)
        return bound

    def bind_value(
        self, value: Any, kind: Kind, item: Model | Kind | None, key: str, path: list[PathStep]
    ) -> Any:
        try:
            if kind is Kind.OBJECT and isinstance(item, Model):
                return self._object(value, item, key, path)
            if kind is Kind.LIST and item is not None:
                return self._list(value, item, key, path)
            return _convert_scalar(value, kind)
        except _Mismatch as exc:
            line, pos = line_position(self.text, value_end(self.text, path))
            message = f"{exc} Path '{json_path(path)}', line {line}, position {pos}."
            self.errors.setdefault(key, []).append(message)
            return None

    def _object(self, value: Any, model: Model, key: str, path: list[PathStep]) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return self.bind_object(value, model, key, path)
        if isinstance(value, list):
            raise _Mismatch(_array_for_object(model.clr_name))
        raise _Mismatch(f"Error converting value {_literal(value)} to type '{model.clr_name}'.")

    def _list(self, value: Any, item: Model | Kind, key: str, path: list[PathStep]) -> list[Any] | None:
        clr = item.clr_name if isinstance(item, Model) else item.value
        list_type = f"System.Collections.Generic.List`1[{clr}]"
        if value is None:
            return None
        if isinstance(value, dict):
            raise _Mismatch(
                f'Cannot deserialize the current JSON object (e.g. {{"name":"value"}}) into type '
                f"'{list_type}' because the type requires a JSON array (e.g. [1,2,3]) "
                "to deserialize correctly."
            )
        if not isinstance(value, list):
            raise _Mismatch(f"Error converting value {_literal(value)} to type '{list_type}'.")
        kind, model = (Kind.OBJECT, item) if isinstance(item, Model) else (item, None)
        return [self.bind_value(v, kind, model, f"{key}[{i}]", [*path, i]) for i, v in enumerate(value)]


def _convert_scalar(value: Any, kind: Kind) -> Any:
    if kind in _INT_RANGES:
        return _to_int(value, kind)
    if kind is Kind.DATETIME:
        return _to_datetime(value)
    return _to_string(value)


def _to_int(value: Any, kind: Kind) -> int | None:
    low, high, name = _INT_RANGES[kind]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # Json.NET reads null and "" as null for the nullable fields
    if isinstance(value, str):
        # Longer than 40 characters it is out of range (and int() may refuse it).
        if len(value) > 40 or not _INT_TEXT.match(value) or not low <= int(value) <= high:
            raise _Mismatch(f"Error converting value {_literal(value)} to type 'System.{name}'.")
        return int(value)
    if isinstance(value, Decimal):
        raise _Mismatch(f"Input string '{value}' is not a valid integer.")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Mismatch(f"Error reading integer. Unexpected token: {_token(value)}.")
    if not low <= value <= high:
        raise _Mismatch(f"JSON integer {value} is too large or small for an {name}.")
    return value


def _to_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"  # .NET's Boolean.ToString()
    if isinstance(value, int | Decimal):
        return str(value)
    raise _Mismatch(f"Error reading string. Unexpected token: {_token(value)}.")


def _to_datetime(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Mismatch(f"Error reading date. Unexpected token: {_token(value)}.")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _Mismatch(f"Could not convert string to DateTime: {value}.") from None
    return value  # kept as sent: real payloads mix several date-time spellings


def _array_for_object(clr_name: str) -> str:
    return (
        f"Cannot deserialize the current JSON array (e.g. [1,2,3]) into type '{clr_name}' because the "
        'type requires a JSON object (e.g. {"name":"value"}) to deserialize correctly.'
    )


def _token(value: Any) -> str:
    """Json.NET's name of the JSON token ``value`` was read from."""
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, Decimal):
        return "Float"
    return "Integer" if isinstance(value, int) else "String"


def _literal(value: Any) -> str:
    """A value as Json.NET quotes it in "Error converting value ..." messages."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "True" if value else "False"
    return "{null}" if value is None else str(value)
