"""A local emulator of the Billbee API's customer part, like localstack for AWS.

Users try the provider without a Billbee account; tests talk to it over real HTTP on
loopback. It checks Billbee's credentials, throttles like Billbee, answers in
Billbee's shapes, keeps its data in SQLite, and can misbehave on purpose (latency,
5xx, lost answers, error envelopes, 429 bursts). See ``docs/sandbox.md``.

Start it with ``python -m billbee_provider.sandbox`` (or ``billbee-sandbox``), or in
a test with :class:`~billbee_provider.sandbox.server.SandboxServer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billbee_provider.sandbox.config import SandboxConfig
from billbee_provider.sandbox.faults import Burst, Faults

if TYPE_CHECKING:
    from billbee_provider.sandbox.app import create_app
    from billbee_provider.sandbox.server import SandboxServer

__all__ = ["Burst", "Faults", "SandboxConfig", "SandboxServer", "create_app"]

# The server needs the [sandbox] extra (fastapi, starlette, uvicorn): imported on first
# use, so that `billbee-sandbox --help` and the configuration classes work without it.
_LAZY = {"create_app": "billbee_provider.sandbox.app", "SandboxServer": "billbee_provider.sandbox.server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
