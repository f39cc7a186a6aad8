"""Socket plumbing shared by the emulators: an aiohttp app runner and two TCP framings.

Every emulator listens on 127.0.0.1 on a free port (port 0) unless told otherwise, and
implements `hang` by accepting the request and then waiting until the emulator stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import Any, Self

from aiohttp import web

from hil.miners.core import EmulatedMiner


class Emulator:
    """Base: start/stop, port, the miner behind it, and the hang gate."""

    def __init__(self, miner: EmulatedMiner) -> None:
        self.miner = miner
        self.port = 0
        self._release = asyncio.Event()
        # Every request as it arrived on the wire (tests pin drivers to the vendor's format):
        # TCP: the decoded JSON; HTTP: {"method", "path", "authorization", "body"}.
        self.seen: list[Any] = []

    async def _hang_gate(self) -> None:
        if self.miner.hang:
            await self._release.wait()
            raise ConnectionAbortedError("emulator stopped while hung")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class HttpEmulator(Emulator):
    """An aiohttp application; subclasses add routes in `routes()`."""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> HttpEmulator:
        @web.middleware
        async def hang(request: web.Request, handler: Any) -> web.StreamResponse:
            text = await request.text() if request.can_read_body else ""
            body: Any = text or None
            with contextlib.suppress(ValueError):
                body = json.loads(text)
            self.seen.append({"method": request.method, "path": request.path,
                              "authorization": request.headers.get("Authorization"),
                              "body": body})
            await self._hang_gate()
            resp: web.StreamResponse = await handler(request)
            return resp

        app = web.Application(middlewares=[hang])
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._release.set()
        await self._runner.cleanup()

    @staticmethod
    async def body(request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='{"message": "body is not JSON"}',
                                     content_type="application/json") from None


class TcpEmulator(Emulator):
    """A TCP server: one request per connection, framing decided by the subclass."""

    async def read_request(self, reader: asyncio.StreamReader) -> Any:
        raise NotImplementedError

    def encode_reply(self, reply: Any) -> bytes:
        raise NotImplementedError

    async def handle(self, request: Any) -> Any:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self.read_request(reader)
            self.seen.append(request)
            await self._hang_gate()
            writer.write(self.encode_reply(await self.handle(request)))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> TcpEmulator:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._release.set()
        self._server.close()
        await self._server.wait_closed()


class CgminerFraming(TcpEmulator):
    """cgminer API: JSON request (no terminator), JSON reply + NUL, then close."""

    async def read_request(self, reader: asyncio.StreamReader) -> Any:
        buf = b""
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                raise ValueError("connection closed before a full request")
            buf += chunk
            try:
                return json.loads(buf.decode().strip().rstrip("\x00"))
            except ValueError:
                if len(buf) > 65536:
                    raise
                continue

    def encode_reply(self, reply: Any) -> bytes:
        return json.dumps(reply).encode() + b"\x00"

    @staticmethod
    def status(letter: str, code: int, msg: str, description: str = "emulator") -> list[dict[
            str, Any]]:
        return [{"STATUS": letter, "When": 0, "Code": code, "Msg": msg,
                 "Description": description}]


class LengthPrefixFraming(TcpEmulator):
    """Whatsminer API v3: 4-byte little-endian length + JSON, both ways."""

    async def read_request(self, reader: asyncio.StreamReader) -> Any:
        (n,) = struct.unpack("<I", await reader.readexactly(4))
        if n > 1 << 20:
            raise ValueError("request too long")
        return json.loads(await reader.readexactly(n))

    def encode_reply(self, reply: Any) -> bytes:
        data = json.dumps(reply).encode()
        return struct.pack("<I", len(data)) + data


class RpcSidecar(Emulator):
    """A firmware that also answers a cgminer-style API on a second port (4028 on the
    device): put it before the main server class (`class X(RpcSidecar, HttpEmulator)`)
    and set `self.rpc` in `__init__`."""

    rpc: CgminerFraming

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    rpc_port: int | None = None) -> Self:
        """Listen on `port` (the firmware's own API); with `rpc_port` also the 4028 API."""
        await super().start(host, port)
        if rpc_port is not None:
            await self.rpc.start(host, rpc_port)
        return self

    async def stop(self) -> None:
        if self.rpc.port:
            await self.rpc.stop()
        await super().stop()
