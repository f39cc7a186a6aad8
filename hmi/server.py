"""Serving the HMI inside the service's process and event loop (uvicorn, no thread).

The service owns the process's signals (SIGTERM/SIGINT stop the control loop and then the
HMI), so uvicorn's own signal handling is switched off. Open live feeds end when the
publisher closes; the rest get a short grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the host process handles signals


class HmiServer:
    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *,
                 sock: socket.socket | None = None, grace_s: float = 2.0,
                 tls_cert_file: str | None = None, tls_key_file: str | None = None) -> None:
        """With `tls_cert_file` and `tls_key_file`: HTTPS only (TLS 1.2+, uvicorn's
        defaults), so the installer password and the PIN never cross the LAN in clear."""
        self.app = app
        self.host, self.port = host, port
        self.sock = sock
        self.tls = tls_cert_file is not None
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off",
                                timeout_graceful_shutdown=int(max(grace_s, 1)),
                                proxy_headers=False, server_header=False,
                                ssl_certfile=tls_cert_file, ssl_keyfile=tls_key_file)
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; returns once the socket accepts connections."""
        sockets = [self.sock] if self.sock is not None else None
        self._task = asyncio.create_task(self.server.serve(sockets), name="hmi")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (port in use, ...)
                raise RuntimeError("HMI server stopped before it started")
            await asyncio.sleep(0.01)
        if self.sock is not None:
            self.host, self.port = self.sock.getsockname()[:2]
        log.info("HMI listening on %s/", self.url)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket (port 0: a free one), for tests and the demo."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # without it every keep-alive answer waits out the client's delayed ACK (40 ms).
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    s.setblocking(False)
    return s
