"""A real fairalloc service on a loopback port, for the service's tests and benchmark.

:class:`LiveServer` runs uvicorn in a thread on a socket it binds and listens on first, so a
client's first request waits in the socket's queue until the server answers it; readiness is
checked by polling that socket with requests to ``/health``.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from fairalloc.serve import ServiceConfig, load_service, server_config


class LiveServer:
    """uvicorn serving ``config`` on 127.0.0.1, an ephemeral port, in a thread."""

    def __init__(self, config: ServiceConfig, *, log_level: str = "warning") -> None:
        import uvicorn

        self.config = config
        self.service = load_service(config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            server_config(config, service=self.service, log_level=log_level)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_ready(self.url, deadline_s=30)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    @property
    def app(self) -> Any:
        """The ASGI application being served."""
        return self.server.config.loaded_app


def wait_ready(url: str, *, deadline_s: float, alive: Any = None) -> None:
    """Poll the server's socket until ``/health`` answers (or the deadline passes).

    Each attempt blocks in the connection until the server accepts or refuses it; a refused
    connection (nothing listening yet) is retried at once after waiting on ``alive``'s exit
    (a subprocess), which returns as soon as that process ends.
    """
    stop = time.monotonic() + deadline_s
    while True:
        try:
            r = httpx.get(f"{url}/health", timeout=max(0.1, stop - time.monotonic()))
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if alive is not None:
            try:
                alive.wait(timeout=0.05)  # returns at once if it has died
            except Exception:
                pass
            else:
                raise RuntimeError("the server process ended before it answered")
        if time.monotonic() > stop:
            raise TimeoutError(f"{url} did not answer within {deadline_s} s")
