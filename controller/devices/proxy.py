"""A Modbus TCP proxy: many clients, one upstream connection.

Some devices accept a single Modbus TCP client (SolarEdge inverters, some Huawei
dongles): once Hearth is connected, Home Assistant is locked out, or the other way
round. The proxy holds the one upstream connection and lets any number of clients
share it. It works on Modbus TCP frames (MBAP header + PDU), so every function code
passes through unchanged; requests are sent upstream one at a time, each with a fresh
transaction id, and the reply goes back to the client that asked with its own id.

Failures are answered the way a Modbus gateway answers them: exception 0x0B (target
device failed to respond) when upstream does not reply in time, 0x0A (gateway path
unavailable) when the upstream connection cannot be opened. A client that sends
something that is not a Modbus TCP frame is logged and disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass

log = logging.getLogger(__name__)

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id (0), length, unit id
MAX_PDU = 253


class FrameError(Exception):
    pass


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(transaction id, unit id, PDU) of the next frame; FrameError if it is not one."""
    header = await reader.readexactly(MBAP.size)
    tid, pid, length, unit = MBAP.unpack(header)
    if pid != 0:
        raise FrameError(f"protocol id {pid} (Modbus is 0)")
    if not 2 <= length <= MAX_PDU + 1:
        raise FrameError(f"length field {length} (2..{MAX_PDU + 1})")
    pdu = await reader.readexactly(length - 1)
    return tid, unit, pdu


def frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


def exception_pdu(function_code: int, code: int) -> bytes:
    return bytes([(function_code | 0x80) & 0xFF, code])


@dataclass
class _Request:
    unit: int
    pdu: bytes
    reply: asyncio.Future[bytes]


class ModbusProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, timeout_s: float = 3.0,
                 connect_delay_s: float = 0.0, inter_request_delay_s: float = 0.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.timeout_s = timeout_s
        self.connect_delay_s = connect_delay_s
        self.inter_request_delay_s = inter_request_delay_s
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._worker: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._tid = 0
        self.forwarded = 0
        self.clients_seen = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve_client, host, port)
        self._worker = asyncio.create_task(self._run_upstream(), name="modbus-proxy upstream")
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("modbus proxy listening on %s:%d for %s:%d", host, bound, *self.upstream)
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._clients) + ([self._worker] if self._worker else []):
            t.cancel()
        for t in list(self._clients) + ([self._worker] if self._worker else []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        self._close_upstream()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- clients ----------------------------------------------------------------------

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        self.clients_seen += 1
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    tid, unit, pdu = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except FrameError as err:
                    log.warning("modbus proxy: client %s sent a bad frame (%s); closing it",
                                peer, err)
                    return
                fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                await self._queue.put(_Request(unit, pdu, fut))
                reply = await fut
                writer.write(frame(tid, unit, reply))
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- upstream ---------------------------------------------------------------------

    def _close_upstream(self) -> None:
        if self._up is not None:
            self._up[1].close()
            self._up = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._up is not None and not self._up[1].is_closing():
            return self._up
        self._close_upstream()
        up = await asyncio.wait_for(asyncio.open_connection(*self.upstream), self.timeout_s)
        log.info("modbus proxy: connected upstream to %s:%d", *self.upstream)
        if self.connect_delay_s:
            await asyncio.sleep(self.connect_delay_s)
        self._up = up
        return up

    async def _exchange(self, req: _Request) -> bytes:
        fc = req.pdu[0] if req.pdu else 0
        try:
            reader, writer = await self._connect()
        except (OSError, TimeoutError) as err:
            log.warning("modbus proxy: upstream %s:%d unavailable (%s)", *self.upstream, err)
            return exception_pdu(fc, 0x0A)
        self._tid = (self._tid + 1) & 0xFFFF
        tid = self._tid
        try:
            writer.write(frame(tid, req.unit, req.pdu))
            await writer.drain()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError
                rtid, _unit, pdu = await asyncio.wait_for(read_frame(reader), left)
                if rtid == tid:
                    self.forwarded += 1
                    return pdu
                log.debug("modbus proxy: dropping a late reply (tid %d)", rtid)
        except TimeoutError:
            log.warning("modbus proxy: no reply from upstream (unit %d, fc %d) within %g s",
                        req.unit, fc, self.timeout_s)
            # A reply may still arrive later; a fresh connection keeps ids in step.
            self._close_upstream()
            return exception_pdu(fc, 0x0B)
        except (OSError, asyncio.IncompleteReadError, FrameError) as err:
            log.warning("modbus proxy: upstream connection broke (%s)", err)
            self._close_upstream()
            return exception_pdu(fc, 0x0B)

    async def _run_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        last = -float("inf")
        while True:
            req = await self._queue.get()
            if req.reply.done():
                continue
            wait = last + self.inter_request_delay_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            reply = await self._exchange(req)
            last = loop.time()
            if not req.reply.done():
                req.reply.set_result(reply)
