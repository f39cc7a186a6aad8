"""Modbus emulators: pymodbus servers that serve device images, with fault injection.

One `ModbusEmulator` is one endpoint (a TCP port, or one end of a serial line) with one
or more devices behind it by unit id, like a gateway or an RS-485 bus. Faults, per
device: no answer, a Modbus exception code (0x02, 0x04, 0x06, 0x0B, ...), a garbage
frame instead of the reply, a frozen value, a slow reply; per endpoint: dropping every
connection, and accepting only one TCP client at a time (SolarEdge, some Huawei
dongles). A request for a unit id nobody has is not answered on a serial line and gets
exception 0x0B on TCP, as a gateway would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.modbus.image import DeviceImage

log = logging.getLogger(__name__)

GARBAGE = bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x13, 0x37, 0x00, 0xFF, 0x55, 0xAA, 0x42])


@dataclass
class Faults:
    no_answer: bool = False
    exception_code: int | None = None
    garbage: bool = False
    frozen: bool = False
    delay_s: float = 0.0

    def clear(self) -> None:
        self.no_answer = self.garbage = self.frozen = False
        self.exception_code = None
        self.delay_s = 0.0


@dataclass
class EmulatedDevice:
    unit_id: int
    image: DeviceImage
    faults: Faults = field(default_factory=Faults)
    requests: int = 0

    def set_values(self, values: Mapping[str, float]) -> None:
        if not self.faults.frozen:
            self.image.set_values(values)


class _Handler(ServerRequestHandler):
    """Refuses a second concurrent client when the emulator says so."""

    def callback_connected(self) -> None:
        super().callback_connected()
        owner: Any = self.server
        if owner.hearth_single_client and len(owner.active_connections) > 1:
            log.info("emulator %s: refusing a second client", owner.hearth_name)
            self.transport.close()


class _TcpServer(ModbusTcpServer):
    hearth_single_client = False
    hearth_name = ""

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.trace_packet, self.trace_pdu,  # type: ignore[no-untyped-call]
                        self.trace_connect)


class _SerialServer(ModbusSerialServer):
    hearth_single_client = False
    hearth_name = ""


class ModbusEmulator:
    def __init__(self, devices: list[EmulatedDevice], *, name: str = "emulator") -> None:
        self.devices = {d.unit_id: d for d in devices}
        self.name = name
        self.single_client = False
        self._server: _TcpServer | _SerialServer | None = None
        self._rtu = False
        self.port: int | None = None

    def device(self, unit_id: int) -> EmulatedDevice:
        return self.devices[unit_id]

    def set_values(self, values: Mapping[str, float]) -> None:
        for d in self.devices.values():
            d.set_values(values)

    # -- pymodbus hooks -------------------------------------------------------------

    async def _action(self, unit_id: int, function_code: int, start_address: int,
                      address: int, count: int, registers: list[int],
                      set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        dev = self.devices[unit_id]
        dev.requests += 1
        if dev.faults.delay_s > 0:
            await asyncio.sleep(dev.faults.delay_s)
        if dev.faults.exception_code is not None:
            return ExcCodes(dev.faults.exception_code)
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # read-only emulators
        words = dev.image.words
        for i in range(count):
            registers[address - start_address + i] = words.get(address + i, 0)
        return None

    def _unit_of(self, frame: bytes) -> int | None:
        if self._rtu:
            return frame[0] if frame else None
        return frame[6] if len(frame) > 6 else None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        unit = self._unit_of(data)
        dev = self.devices.get(unit) if unit is not None else None
        if dev is None:
            if self._rtu:
                return b""  # nobody on the bus has that address: silence
            # A TCP gateway without that unit: exception 0x0B, keeping the MBAP header.
            fc = data[7] | 0x80 if len(data) > 7 else 0x83
            return data[:4] + (3).to_bytes(2, "big") + data[6:7] + bytes([fc, 0x0B])
        if dev.faults.no_answer:
            return b""
        if dev.faults.garbage:
            return GARBAGE
        return data

    # -- lifecycle ------------------------------------------------------------------

    def _context(self) -> list[SimDevice]:
        sims = []
        for unit_id, dev in sorted(self.devices.items()):
            data = [SimData(address=a, values=words, datatype=DataType.REGISTERS)
                    for a, words in dev.image.blocks()]
            sims.append(SimDevice(id=unit_id, simdata=data,
                                  action=functools.partial(self._action, unit_id)))
        return sims

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on host:port (0 = a free port); returns the port."""
        server = _TcpServer(self._context(), address=(host, port),
                            trace_packet=self._trace_packet)
        server.hearth_single_client = self.single_client
        server.hearth_name = self.name
        await server.serve_forever(background=True)
        self._server = server
        listener: Any = server.transport  # an asyncio Server while listening
        self.port = int(listener.sockets[0].getsockname()[1])
        return self.port

    async def start_rtu(self, serial_port: str, *, baudrate: int = 9600, parity: str = "N",
                        stopbits: int = 1) -> None:
        self._rtu = True
        server = _SerialServer(self._context(), framer=FramerType.RTU, port=serial_port,
                               baudrate=baudrate, parity=parity, stopbits=stopbits,
                               trace_packet=self._trace_packet)
        server.hearth_name = self.name
        await server.serve_forever(background=True)
        self._server = server

    def set_single_client(self, on: bool) -> None:
        self.single_client = on
        if isinstance(self._server, _TcpServer):
            self._server.hearth_single_client = on

    def client_count(self) -> int:
        return len(self._server.active_connections) if self._server is not None else 0

    async def drop_connections(self) -> int:
        """Close every client connection (a device reboot, a flaky Wi-Fi dongle)."""
        if self._server is None:
            return 0
        conns = list(self._server.active_connections.values())
        for c in conns:
            if c.transport is not None:
                c.transport.close()
        return len(conns)

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
