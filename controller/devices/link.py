"""One shared Modbus connection per TCP host:port or serial port.

Many devices often sit behind one connection: an RS-485 bus with a meter and an
inverter, a Victron GX or a gateway with several unit ids. They must take turns (one
request on the wire at a time), some need a pause between requests or after connecting
(Huawei's SDongle drops the first requests after a connect), and a broken connection is
reopened on the next request instead of needing a restart.

Errors come out as `ReadError` with a `kind` the poller can act on:
- "timeout": no answer in time ("garbled" if bytes came back that were not a reply),
- "exception": the device answered with a Modbus exception code (`code`),
- "connect": the connection could not be opened,
- "io": the connection broke or the reply did not match the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    0x01: "illegal function", 0x02: "illegal data address", 0x03: "illegal data value",
    0x04: "server device failure", 0x05: "acknowledge", 0x06: "server device busy",
    0x08: "memory parity error", 0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}

ErrorKind = Literal["timeout", "garbled", "exception", "connect", "io"]


class ReadError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class SerialEndpoint:
    port: str
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __str__(self) -> str:
        return f"rtu://{self.port}?{self.baudrate}{self.bytesize}{self.parity}{self.stopbits}"


Endpoint = TcpEndpoint | SerialEndpoint


class Link:
    """A connection several devices share. Requests are serialised; the link reconnects
    by itself (with back-off) after it breaks."""

    def __init__(self, endpoint: Endpoint, *, connect_timeout_s: float = 3.0,
                 connect_delay_s: float = 0.0, inter_request_delay_s: float = 0.0,
                 reconnect_backoff_max_s: float = 60.0) -> None:
        self.endpoint = endpoint
        self.connect_timeout_s = connect_timeout_s
        self.connect_delay_s = connect_delay_s
        self.inter_request_delay_s = inter_request_delay_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._last_request_end = -float("inf")
        self._rx_bytes = 0
        self._connect_failures = 0
        self._next_connect_at = -float("inf")
        self.requests = 0  # counters for benchmarks and tests
        self.connects = 0

    # -- connection -------------------------------------------------------------------

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_bytes += len(data)
        return data

    def _make_client(self, timeout_s: float) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # retries=0 and reconnect_delay=0: the poller owns retries and back-off, so a dead
        # device never hides behind pymodbus's own retry loop.
        ep = self.endpoint
        if isinstance(ep, TcpEndpoint):
            return AsyncModbusTcpClient(ep.host, port=ep.port, timeout=timeout_s, retries=0,
                                        reconnect_delay=0, trace_packet=self._trace_packet)
        return AsyncModbusSerialClient(
            ep.port, framer=FramerType.RTU, baudrate=ep.baudrate, parity=ep.parity,
            stopbits=ep.stopbits, bytesize=ep.bytesize, timeout=timeout_s, retries=0,
            reconnect_delay=0, trace_packet=self._trace_packet,
        )

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        now = time.monotonic()
        if now < self._next_connect_at:
            raise ReadError("connect", f"{self.endpoint}: not connected (next attempt in "
                            f"{self._next_connect_at - now:.1f} s)")
        self._drop()
        client = self._make_client(self.connect_timeout_s)
        ok = False
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as err:
            log.debug("connect %s: %s", self.endpoint, err)
        if not ok:
            client.close()
            self._connect_failures += 1
            backoff = min(0.5 * 2 ** (self._connect_failures - 1), self.reconnect_backoff_max_s)
            self._next_connect_at = time.monotonic() + backoff
            raise ReadError("connect", f"{self.endpoint}: cannot connect")
        self._client = client
        self._connect_failures = 0
        self.connects += 1
        log.info("connected to %s", self.endpoint)
        if self.connect_delay_s > 0:
            await asyncio.sleep(self.connect_delay_s)
        return client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close(self) -> None:
        async with self._lock:
            self._drop()

    # -- requests ---------------------------------------------------------------------

    async def read(self, unit_id: int, table: Literal["holding", "input"], address: int,
                   count: int, timeout_s: float) -> list[int]:
        async with self._lock:
            client = await self._ensure_connected()
            wait = self._last_request_end + self.inter_request_delay_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            # One timeout per request: devices sharing a link may need different ones.
            client.ctx.comm_params.timeout_connect = timeout_s
            self._rx_bytes = 0
            self.requests += 1
            try:
                if table == "holding":
                    rr = await client.read_holding_registers(address, count=count,
                                                             device_id=unit_id)
                else:
                    rr = await client.read_input_registers(address, count=count,
                                                           device_id=unit_id)
            except ConnectionException as err:
                self._drop()
                raise ReadError("io", f"{self.endpoint}: connection lost ({err})") from None
            except ModbusException as err:
                text = str(err)
                if "No response" in text:
                    kind: ErrorKind = "garbled" if self._rx_bytes else "timeout"
                    what = (f"unreadable reply ({self._rx_bytes} bytes that are no valid frame)"
                            if kind == "garbled" else "no answer")
                    if not self.connected:
                        self._drop()
                    raise ReadError(kind, f"{what} within {timeout_s:g} s") from None
                if not self.connected:
                    self._drop()
                raise ReadError("io", f"bad reply: {text}") from None
            finally:
                self._last_request_end = time.monotonic()
            if isinstance(rr, ExceptionResponse) or rr.isError():
                code = int(getattr(rr, "exception_code", 0))
                name = EXCEPTION_NAMES.get(code, "unknown")
                raise ReadError("exception", f"exception 0x{code:02X} ({name})", code)
            regs = list(rr.registers)
            if len(regs) != count:
                raise ReadError("io", f"asked for {count} registers, got {len(regs)}")
            return regs


class LinkPool:
    """One Link per endpoint; devices that share an endpoint share the link."""

    def __init__(self) -> None:
        self._links: dict[str, Link] = {}

    def get(self, endpoint: Endpoint, *, connect_delay_s: float, inter_request_delay_s: float,
            connect_timeout_s: float) -> Link:
        key = str(endpoint) if isinstance(endpoint, TcpEndpoint) else f"rtu://{endpoint.port}"
        link = self._links.get(key)
        if link is None:
            link = Link(endpoint, connect_timeout_s=connect_timeout_s,
                        connect_delay_s=connect_delay_s,
                        inter_request_delay_s=inter_request_delay_s)
            self._links[key] = link
            return link
        if isinstance(endpoint, SerialEndpoint) and link.endpoint != endpoint:
            raise ValueError(f"{endpoint.port} is used with different serial settings "
                             f"({link.endpoint} and {endpoint})")
        # The slowest device on a shared link sets its pauses.
        link.connect_delay_s = max(link.connect_delay_s, connect_delay_s)
        link.inter_request_delay_s = max(link.inter_request_delay_s, inter_request_delay_s)
        link.connect_timeout_s = max(link.connect_timeout_s, connect_timeout_s)
        return link

    @property
    def links(self) -> list[Link]:
        return list(self._links.values())

    async def close(self) -> None:
        for link in self._links.values():
            await link.close()
