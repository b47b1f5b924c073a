"""Running a sandbox in a background thread, for tests and demos.

``with SandboxServer() as sandbox:`` gives a sandbox on a free loopback port with an
in-memory database; ``sandbox.base_url`` is what a Billbee connection's Host takes.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from types import TracebackType

import uvicorn

from billbee_provider.sandbox.app import create_app
from billbee_provider.sandbox.config import IN_MEMORY, SandboxConfig
from billbee_provider.sandbox.context import SandboxContext


class SandboxServer:
    """A sandbox served by uvicorn in a daemon thread; a context manager.

    :param config: the sandbox settings; default: loopback, a free port, an in-memory
        database. ``port=0`` picks a free port, bound before the server starts, so
        there is no race with other processes.
    :param http: uvicorn's HTTP implementation (``"auto"``, ``"h11"``, ``"httptools"``).
    :param startup_timeout: seconds to wait for the server to accept connections.
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, http: str = "auto", startup_timeout: float = 10.0
    ) -> None:
        self.config = config or SandboxConfig(port=0, db_path=IN_MEMORY)
        self._http = http
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._context: SandboxContext | None = None

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` of the running server (no trailing slash)."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.config.port}"

    @property
    def context(self) -> SandboxContext:
        """The running sandbox's context (config, store, faults); for white-box checks."""
        if self._context is None:
            raise RuntimeError("the sandbox server is not running")
        return self._context

    def start(self) -> SandboxServer:
        """Bind the port, start serving, and wait until connections are accepted.

        :raises RuntimeError: if the server does not come up within the timeout.
        """
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        sock = _bind(self.config.host, self.config.port)
        self.config = replace(self.config, port=sock.getsockname()[1])
        app = create_app(self.config)
        self._context = app.state.sandbox
        # log_config=None: leave logging to the host application; uvicorn's access log
        # is off because the sandbox logs its own lines (never bodies or secrets).
        uv_config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            http=self._http,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="billbee-sandbox", daemon=True
        )
        self._thread.start()
        self._wait_started(sock)
        return self

    def stop(self) -> None:
        """Stop serving, wait for the thread, close the database. Idempotent."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._context is not None:
            self._context.store.close()
        self._server = self._thread = self._context = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_started(self, sock: socket.socket) -> None:
        deadline = time.monotonic() + self._startup_timeout
        assert self._server is not None and self._thread is not None
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"the sandbox server did not start on {self.base_url}")
            time.sleep(0.01)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
