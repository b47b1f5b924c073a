"""Command line of the sandbox: ``python -m billbee_provider.sandbox`` / ``billbee-sandbox``.

Every option can also come from an environment variable ``BILLBEE_SANDBOX_<NAME>``
(``--api-key`` → ``BILLBEE_SANDBOX_API_KEY``); a command-line option wins. Prefer the
variables for the key and password: command lines are visible to other users.

The server (fastapi, starlette, uvicorn: the ``[sandbox]`` extra) is imported only when
it starts, so ``--help`` and bad options are answered without it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from billbee_provider.api.config import parse_flag
from billbee_provider.sandbox import config as defaults
from billbee_provider.sandbox.config import SandboxConfig
from billbee_provider.sandbox.faults import Burst, Faults

if TYPE_CHECKING:
    import uvicorn

    from billbee_provider.sandbox.context import SandboxContext

ENV_PREFIX = "BILLBEE_SANDBOX_"
#: Exit code when the server could not start (e.g. the port is taken), as uvicorn's.
STARTUP_FAILURE = 3
#: Exit code for bad options and for missing server dependencies, as argparse's.
USAGE_ERROR = 2
INSTALL_HINT = "pip install 'airflow-provider-billbee[sandbox]'"

logger = logging.getLogger("billbee_provider.sandbox")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM or Ctrl-C.

    :param argv: the arguments without the program name; default ``sys.argv[1:]``.
    :return: 0 after a clean stop, 2 for bad options or a missing server dependency,
        3 if the server could not start.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        import uvicorn

        from billbee_provider.sandbox.app import create_app
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] == "billbee_provider":
            raise  # our own module is broken: not a missing extra
        missing = exc.name or str(exc)
        print(
            f"billbee-sandbox: the sandbox server needs {missing}, which is not installed: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return USAGE_ERROR
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(config)
    context: SandboxContext = app.state.sandbox
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=3,
        )
    )
    logger.info(
        "Billbee sandbox for user %s on http://%s:%s/api/v1, database %s",
        config.user,
        config.host,
        config.port,
        config.db_path,
    )
    try:
        with _SignalStop(server):
            server.run()
    finally:
        context.store.close()
    return 0 if server.started else STARTUP_FAILURE


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; defaults come from ``BILLBEE_SANDBOX_*`` variables."""
    parser = argparse.ArgumentParser(
        prog="billbee-sandbox",
        description="Local emulator of the Billbee API (customers). See docs/sandbox.md.",
    )
    add = _Adder(parser)
    add("--host", defaults.DEFAULT_HOST, "interface to listen on (loopback only unless --allow-remote)")
    add("--port", defaults.DEFAULT_PORT, "TCP port", int)
    add("--db", defaults.DEFAULT_DB, "SQLite file of the sandbox's data")
    add.flag("--reset", "wipe the database at start")
    add("--api-key", defaults.DEFAULT_API_KEY, "expected X-Billbee-Api-Key")
    add("--user", defaults.DEFAULT_USER, "expected Basic-auth user (case-insensitive)")
    add("--api-password", defaults.DEFAULT_API_PASSWORD, "expected Basic-auth API password")
    add("--endpoint-limit", 2, "requests/s per endpoint per key + user", int)
    add("--user-limit", 10, "requests/s per key + user", int)
    add("--key-limit", 50, "requests/s per key", int)
    add.flag("--no-retry-after", "answer 429 without a Retry-After header")
    add("--latency", 0.0, "seconds added to every API answer", float)
    add("--fail-rate", 0.0, "fraction of API requests answered 503 before any work", float)
    add("--drop-rate", 0.0, "fraction of creates that commit, then drop the connection", float)
    add("--error-rate", 0.0, "fraction of creates answered ErrorCode 8, creating nothing", float)
    add("--burst-429", None, "EVERY:LENGTH: 429 for LENGTH seconds of every EVERY seconds")
    add("--seed", None, "random seed of the fault fractions", int)
    add.flag("--api-not-activated", "answer every API request with ErrorCode 1 (HTTP 403)")
    add.flag("--allow-remote", "allow a non-loopback --host")
    add("--log-level", "info", "debug, info, warning or error")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Turn parsed options into a :class:`SandboxConfig`.

    :raises ValueError: for out-of-range values or a non-loopback host.
    """
    faults = Faults(
        latency=args.latency,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        error_rate=args.error_rate,
        burst_429=Burst.parse(args.burst_429) if args.burst_429 else None,
        retry_after=not args.no_retry_after,
        api_not_activated=args.api_not_activated,
    )
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ValueError(f"--log-level must be debug, info, warning or error, got {args.log_level!r}")
    return SandboxConfig(
        host=args.host,
        port=args.port,
        db_path=args.db,
        reset=args.reset,
        api_key=args.api_key,
        user=args.user,
        api_password=args.api_password,
        endpoint_limit=args.endpoint_limit,
        user_limit=args.user_limit,
        key_limit=args.key_limit,
        allow_remote=args.allow_remote,
        faults=faults,
        seed=args.seed,
    )


class _Adder:
    """Adds options whose defaults come from the environment."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def __call__(self, option: str, default: Any, help_text: str, kind: Callable[[str], Any] = str) -> None:
        env = _env_name(option)
        # A string default goes through `type` like a command-line value, so a bad
        # environment value is reported as cleanly as a bad option.
        value = os.environ.get(env, None if default is None else str(default))
        shown = "" if default is None else f" (default {default})"
        self.parser.add_argument(option, type=kind, default=value, help=f"{help_text}{shown}; env {env}")

    def flag(self, option: str, help_text: str) -> None:
        env = _env_name(option)
        raw = os.environ.get(env, "").strip()
        try:
            default = parse_flag(raw) if raw else False  # unset or empty: off
        except ValueError as exc:
            self.parser.error(f"{env} {exc} (1/true/yes/on or 0/false/no/off)")
        self.parser.add_argument(option, action="store_true", default=default, help=f"{help_text}; env {env}")


def _env_name(option: str) -> str:
    return ENV_PREFIX + option.lstrip("-").upper().replace("-", "_")


class _SignalStop:
    """Make SIGTERM and SIGINT stop ``server`` gracefully and end the process with 0.

    uvicorn handles both signals while it serves, but afterwards re-raises the
    signal at the handler that was in place before; without this one that is the
    default handler, and the process would die with -SIGTERM instead of exiting.
    """

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.server.should_exit = True


if __name__ == "__main__":
    sys.exit(main())
