"""Checking Billbee's two credentials: the ``X-Billbee-Api-Key`` header and HTTP Basic.

Billbee wants both on every request (API-FACTS "Authentication"): the key names the
developer's app, Basic carries the Billbee user (or e-mail) and the account's API
password. The user name is compared case-insensitively, like an e-mail address;
secrets are compared in constant time, out of habit rather than necessity.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from billbee_provider.sandbox.config import SandboxConfig

KEY_HEADER = "x-billbee-api-key"
#: The texts are the sandbox's own: Billbee's exact wording is not documented.
MISSING_KEY_MESSAGE = "Authorization has been denied for this request. Invalid or missing X-Billbee-Api-Key."
DENIED_MESSAGE = "Authorization has been denied for this request."
CHALLENGE = {"WWW-Authenticate": 'Basic realm="Billbee"'}


def api_key_ok(headers: Mapping[str, str], config: SandboxConfig) -> bool:
    """Whether the request carries the configured API key."""
    given = headers.get(KEY_HEADER)
    return given is not None and _same(given, config.api_key)


def basic_auth_ok(headers: Mapping[str, str], config: SandboxConfig) -> bool:
    """Whether HTTP Basic names the configured user and API password."""
    credentials = _basic_credentials(headers.get("authorization"))
    if credentials is None:
        return False
    user, password = credentials
    # Both comparisons always run, so the answer time does not tell which one failed.
    user_ok = _same(user.casefold(), config.user.casefold())
    password_ok = _same(password, config.api_password)
    return user_ok and password_ok


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
