"""Billbee connection settings, validated once, before any request is sent.

:class:`BillbeeConfig` is built from the four things an Airflow connection holds (host,
login, password, extra) but knows nothing of Airflow, so the hook, the sandbox demo and
tests all share one set of rules and one set of error messages.

This module does not import Airflow.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from billbee_provider.api.errors import BillbeeConfigError, shorten

DEFAULT_HOST = "https://app.billbee.io"
#: Per endpoint, per API key + user (API-FACTS "Throttling").
DEFAULT_ENDPOINT_RATE_LIMIT = 2
#: All endpoints together, per API key + user.
DEFAULT_ACCOUNT_RATE_LIMIT = 10

#: Extra keys this connection type understands, with their converters.
NUMERIC_EXTRAS: dict[str, type] = {
    "connect_timeout": float,
    "read_timeout": float,
    "endpoint_rate_limit": int,
    "account_rate_limit": int,
    "max_retries": int,
}
#: HttpHook's names for TLS options: refused, so nobody believes they changed something.
_HTTP_HOOK_TLS_KEYS = ("verify", "verify_ssl")
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: A host name in ASCII (an internationalised one in its xn-- form); IPv6 is checked apart.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
#: What an HTTP header value may hold without quoting: visible ASCII.
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")
_SHOWN_CHARS = 60


@dataclass(frozen=True, repr=False)
class BillbeeConfig:
    """Everything the client needs to talk to one Billbee account.

    :param base_url: ``scheme://host[:port]`` without a path, e.g. ``https://app.billbee.io``.
    :param api_key: value of the ``X-Billbee-Api-Key`` header (identifies the app).
    :param user: Billbee user name or e-mail (HTTP Basic user).
    :param password: the account's API password (not the login password).
    :param connect_timeout: seconds to wait for a TCP/TLS connection.
    :param read_timeout: seconds to wait for an answer once the request is sent.
    :param endpoint_rate_limit: requests/s allowed per endpoint.
    :param account_rate_limit: requests/s allowed over all endpoints.
    :param max_retries: retries after the first attempt for retryable failures.
    :param verify_tls: verify Billbee's TLS certificate. Switching it off is an explicit
        connection option (extra ``verify_tls: false``) and the client warns at every run.
    :param ca_bundle: path of a CA bundle to verify against (e.g. a company proxy's CA).
    """

    base_url: str
    api_key: str
    user: str
    password: str
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    endpoint_rate_limit: int = DEFAULT_ENDPOINT_RATE_LIMIT
    account_rate_limit: int = DEFAULT_ACCOUNT_RATE_LIMIT
    max_retries: int = 5
    verify_tls: bool = True
    ca_bundle: str | None = None

    def __repr__(self) -> str:
        # Never show the secrets, even in a debugger or a traceback's locals.
        return f"BillbeeConfig(base_url={self.base_url!r}, user=<set>, api_key=<set>, password=<set>)"

    @property
    def account_id(self) -> str:
        """This account's identity hash (see :func:`account_id`): one value however Host is spelled."""
        return account_id(self.base_url, self.user)

    @property
    def secrets(self) -> tuple[str, str]:
        """The values that must never appear in logs: API key and API password."""
        return (self.api_key, self.password)

    @classmethod
    def from_connection(
        cls,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | None,
        *,
        conn_id: str = "billbee_default",
    ) -> BillbeeConfig:
        """Validate connection fields and build the config.

        :raises BillbeeConfigError: naming the connection and the field at fault.
        """
        if extra is not None and not isinstance(extra, Mapping):
            raise BillbeeConfigError(
                f"Billbee connection {conn_id!r}: Extra must be a JSON object, not a {type(extra).__name__}"
            )
        # Older Airflow UIs stored form fields as ``extra__<conn_type>__<name>``.
        extra = {str(k).removeprefix("extra__billbee__"): v for k, v in (extra or {}).items()}
        missing = _missing_fields(login, password, extra.get("api_key"))
        if missing:
            raise BillbeeConfigError(
                f"Billbee connection {conn_id!r} is missing {', '.join(missing)}; "
                "set it in the connection (Admin > Connections) before running"
            )
        _check_credentials(conn_id, str(login).strip(), str(password), extra["api_key"])
        numbers: dict[str, Any] = {
            k: _number(conn_id, k, extra[k]) for k in NUMERIC_EXTRAS if _given(extra.get(k))
        }
        base_url, tls = normalize_base_url(host, conn_id=conn_id), _tls_options(conn_id, extra)
        try:
            return cls(
                base_url=base_url,
                api_key=str(extra["api_key"]).strip(),
                user=str(login).strip(),
                password=str(password),
                **numbers,
                **tls,
            )
        except BillbeeConfigError as exc:  # a range check of __post_init__: name the connection
            raise BillbeeConfigError(f"Billbee connection {conn_id!r}: {exc}") from None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise BillbeeConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        for name in ("endpoint_rate_limit", "account_rate_limit"):
            if getattr(self, name) < 1:
                raise BillbeeConfigError(f"{name} must be >= 1 request/s, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise BillbeeConfigError(f"max_retries must be >= 0, got {self.max_retries}")


def _given(value: object) -> bool:
    return value is not None and str(value).strip() != ""


def _missing_fields(login: str | None, password: str | None, api_key: object) -> list[str]:
    names = [
        ("the Billbee user name / e-mail (Login)", login),
        ("the API password (Password)", password),
        ("the API key (extra field 'api_key')", api_key),
    ]
    return [label for label, value in names if not _given(value)]


def _tls_options(conn_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    """``verify_tls`` and ``ca_bundle`` from the extras; HttpHook's ``verify`` is refused."""
    for key in _HTTP_HOOK_TLS_KEYS:
        if key in extra:
            raise BillbeeConfigError(
                f"Billbee connection {conn_id!r}: extra {key!r} is not a Billbee option. To switch "
                "TLS verification off (not recommended) set 'verify_tls': false; to trust a private "
                "CA set 'ca_bundle' to its file"
            )
    options: dict[str, Any] = {}
    if _given(extra.get("verify_tls")):
        options["verify_tls"] = _flag(conn_id, "verify_tls", extra["verify_tls"])
    if _given(extra.get("ca_bundle")):
        options["ca_bundle"] = str(extra["ca_bundle"]).strip()
    return options


def parse_flag(value: object) -> bool:
    """A yes/no setting as a connection extra or a rendered template gives it.

    ``True``/``False`` as they are; text ``true/1/yes/on`` or ``false/0/no/off`` in any
    case. Empty text and ``none`` are *not* accepted: a setting that renders empty is a
    mistake to name, not a silent ``False``.

    :raises ValueError: for anything else (the caller names the setting).
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE_WORDS | _FALSE_WORDS:
        return text in _TRUE_WORDS
    raise ValueError(f"must be true or false, got {shorten(repr(value), _SHOWN_CHARS)}")


def _flag(conn_id: str, key: str, value: object) -> bool:
    try:
        return parse_flag(value)
    except ValueError as exc:
        raise BillbeeConfigError(f"Billbee connection {conn_id!r}: extra {key!r} {exc}") from None


def _check_credentials(conn_id: str, login: str, password: str, api_key: object) -> None:
    """Refuse credentials that cannot travel in HTTP headers; the message never shows them."""
    where = f"Billbee connection {conn_id!r}"
    if isinstance(api_key, bool) or not isinstance(api_key, str | int):
        raise BillbeeConfigError(f"{where}: extra 'api_key' must be text, not a {type(api_key).__name__}")
    if not _HEADER_TOKEN.fullmatch(str(api_key).strip()):
        raise BillbeeConfigError(
            f"{where}: extra 'api_key' may hold only visible ASCII characters (no spaces or line breaks)"
        )
    if ":" in login:
        raise BillbeeConfigError(f"{where}: Login must not contain ':' (HTTP Basic auth cannot carry it)")
    for label, value in (("Login", login), ("Password", password)):
        if not _latin1(value):
            raise BillbeeConfigError(
                f"{where}: {label} has a character HTTP Basic auth cannot carry (only Latin-1 is sent)"
            )


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _number(conn_id: str, key: str, value: object) -> float | int:
    convert = NUMERIC_EXTRAS[key]
    try:
        if isinstance(value, bool) or (
            convert is int and isinstance(value, float) and not value.is_integer()
        ):
            raise TypeError(key)  # True is no timeout; 2.5 retries is no count
        number: float | int = convert(value)
        if not math.isfinite(number):
            raise ValueError(key)
    except (TypeError, ValueError, OverflowError):
        shown = repr(value)
        shown = shorten(shown, _SHOWN_CHARS)
        raise BillbeeConfigError(
            f"Billbee connection {conn_id!r}: extra {key!r} must be a {convert.__name__}, got {shown}"
        ) from None
    return number


def normalize_base_url(host: str | None, *, conn_id: str = "billbee_default") -> str:
    """Turn the connection's Host into ``scheme://host[:port]``.

    An empty host means Billbee's production host; a bare host name gets ``https://``;
    a trailing ``/api/v1`` (as printed in Billbee's docs) is dropped. Plain ``http://``
    is allowed only for loopback hosts (the sandbox): credentials would travel in clear.

    :raises BillbeeConfigError: for any other path, a query, or insecure http.
    """
    if host is not None and not isinstance(host, str):
        raise BillbeeConfigError(
            f"Billbee connection {conn_id!r}: Host must be text, not a {type(host).__name__}"
        )
    raw = (host or "").strip() or DEFAULT_HOST
    if "://" not in raw:
        raw = f"https://{raw}"
    where = f"Billbee connection {conn_id!r}: Host {_without_userinfo(raw)!r}"
    parts = _split_url(raw, where)
    if "@" in parts.netloc:  # also an empty user, "https://@host"
        raise BillbeeConfigError(
            f"Billbee connection {conn_id!r}: put credentials in Login/Password, not in Host"
        )
    path = parts.path.rstrip("/")
    if path.lower() not in ("", "/api/v1") or parts.query or parts.fragment:
        raise BillbeeConfigError(
            f"{where} must not contain a path or query; use e.g. https://app.billbee.io "
            "(the provider adds /api/v1/...)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise BillbeeConfigError(
            f"{where} uses plain http to a non-loopback host; the API key and password would "
            "travel unencrypted. Use https:// (plain http is only allowed for a local sandbox)"
        )
    return f"{parts.scheme}://{parts.netloc.rstrip(':')}"


def _split_url(raw: str, where: str) -> SplitResult:
    """Split ``raw``; refuse a scheme other than http(s), a bad host name or port."""
    problem = BillbeeConfigError(f"{where} must look like https://app.billbee.io (with an optional :port)")
    try:
        parts = urlsplit(raw)
        port = parts.port  # ValueError unless empty or 0..65535
    except ValueError:  # also "Invalid IPv6 URL"
        raise problem from None
    hostname = parts.hostname or ""
    valid_name = _is_ipv6(hostname) if ":" in hostname else bool(_HOST_NAME.fullmatch(hostname))
    if parts.scheme not in ("http", "https") or not valid_name or port == 0:
        raise problem
    return parts


def _is_ipv6(hostname: str) -> bool:
    try:
        return ipaddress.ip_address(hostname).version == 6
    except ValueError:
        return False


def _without_userinfo(url: str) -> str:
    """Drop ``user:password@`` from a URL so that it can go into an error text."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest.split("/", 1)[0] else url


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if hostname.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


# -- one Billbee account, however its connection spells it -------------------------------

#: Host names of Billbee's production API. The Swagger names ``api.billbee.io`` in its text
#: and ``app.billbee.io`` as its host; the .NET SDK uses ``app.``, the PHP SDK ``api.``
#: (API-FACTS "Base URL"): both reach the same accounts, so they are one host here.
_BILLBEE_HOSTS = frozenset({"app.billbee.io", "api.billbee.io"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: What every loopback spelling (``localhost``, ``127.0.0.1``, ``::1`` ...) becomes.
LOOPBACK_HOST = "loopback"


def account_identity(base_url: str, user: str) -> str:
    """The one spelling of a Billbee account: ``scheme://host[:port]`` and user, on two lines.

    Everything keyed by account (the import's lock, the client's throttle windows) is
    derived from this, so that two connections that spell the Host differently but reach
    the same account share one lock. The rules:

    - scheme and host are lower-cased, a trailing dot of the host is dropped, and so is
      the scheme's default port (``:443`` for https, ``:80`` for http);
    - a trailing ``/`` and a trailing ``/api/v1`` (any case) are dropped;
    - ``api.billbee.io`` is ``app.billbee.io``: both are Billbee's production API;
    - every loopback spelling (``localhost``, ``localhost.localdomain``, ``ip6-localhost``,
      any address in 127.0.0.0/8, ``::1``) is one host, ``loopback``: they are the same
      machine, and a sandbox on ``127.0.0.1:P`` answers ``localhost:P``. The port stays:
      two sandboxes on two ports are two accounts;
    - the user is stripped and case-folded (Billbee's user name is an e-mail or a name
      that does not depend on case).

    Merging two spellings only serialises imports that could have run side by side;
    failing to merge them lets two imports of one account create duplicates, so every
    doubtful case merges. The API key is not part of the identity: it names the
    calling app, not the account whose customers are created. Two different Billbee
    users of one account remain two identities (nothing in the connection tells that
    they share an account).

    :param base_url: the connection's base URL (as :func:`normalize_base_url` returns it,
        or a spelling of it).
    :param user: the Billbee user (HTTP Basic user).
    :return: e.g. ``"https://app.billbee.io\\nshop@example.com"``. It holds the user: never
        log it; :func:`account_id` is its hash.
    """
    raw = base_url.strip()
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if is_loopback(host):
        host = LOOPBACK_HOST
    elif host in _BILLBEE_HOSTS:
        host = "app.billbee.io"
    elif ":" in host:
        host = f"[{host}]"
    origin = f"{scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        origin += f":{port}"
    path = parts.path.rstrip("/")
    if path.lower().endswith("/api/v1"):
        path = path[: -len("/api/v1")].rstrip("/")
    return f"{origin}{path}\n{user.strip().casefold()}"


def account_id(base_url: str, user: str) -> str:
    """A hash of :func:`account_identity`: safe to put in file names and logs (no user in clear).

    :return: 32 lower-case hex digits.
    """
    return hashlib.sha256(account_identity(base_url, user).encode()).hexdigest()[:32]
