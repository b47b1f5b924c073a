"""Settings of one sandbox instance: where it listens, its credentials, limits, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from billbee_provider.api.config import is_loopback
from billbee_provider.sandbox.faults import Faults

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_DB = "billbee-sandbox.sqlite"
DEFAULT_API_KEY = "sandbox-api-key"
DEFAULT_USER = "sandbox@example.com"
#: Not a secret: the sandbox's documented demo password.
DEFAULT_API_PASSWORD = "sandbox-api-password"  # noqa: S105
#: ``db_path`` value for a database that lives only as long as the process.
IN_MEMORY = ":memory:"


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox instance needs; validated on creation.

    The API key and password are left out of ``repr`` so that a logged config
    never shows them.

    :param host: interface to listen on; must be loopback unless ``allow_remote``.
    :param port: TCP port; 0 lets :class:`~billbee_provider.sandbox.server.SandboxServer`
        pick a free one.
    :param db_path: SQLite file (or ``":memory:"``).
    :param reset: wipe the database when the app is created.
    :param api_key: expected ``X-Billbee-Api-Key``.
    :param user: expected Basic-auth user (compared case-insensitively).
    :param api_password: expected Basic-auth password.
    :param endpoint_limit: requests/s per endpoint per key + user.
    :param user_limit: requests/s per key + user over all endpoints.
    :param key_limit: requests/s per key.
    :param allow_remote: permit a non-loopback ``host``.
    :param faults: initial fault switches.
    :param seed: seed of the fault decisions (``None``: not reproducible).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db_path: str | Path = DEFAULT_DB
    reset: bool = False
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    user: str = DEFAULT_USER
    api_password: str = field(default=DEFAULT_API_PASSWORD, repr=False)
    endpoint_limit: int = 2
    user_limit: int = 10
    key_limit: int = 50
    allow_remote: bool = False
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address; the sandbox has fake, "
                "well-known credentials, so listening beyond this machine needs --allow-remote"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        for name in ("endpoint_limit", "user_limit", "key_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 request/s, got {getattr(self, name)}")
        for name in ("api_key", "user", "api_password"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
