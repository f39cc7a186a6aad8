"""`hearth modbus-proxy`: Hearth and Home Assistant share a single-client SolarEdge."""

from __future__ import annotations

import asyncio
import logging

import pytest
from modbus_testkit import serve, tcp_device
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from controller.devices.acquisition import Acquisition
from controller.devices.proxy import ModbusProxy


async def test_two_clients_share_a_single_client_device_through_the_proxy() -> None:
    emu = await serve("solaredge")
    emu.set_single_client(True)
    proxy = ModbusProxy("127.0.0.1", emu.port or 0, timeout_s=1.0)
    port = await proxy.start()
    hearth = Acquisition([tcp_device("se", "solaredge", port, role="hybrid")])
    ha = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    try:
        assert await ha.connect()

        async def home_assistant() -> list[int]:
            regs: list[int] = []
            for _ in range(10):
                rr = await ha.read_holding_registers(40000, count=4, device_id=1)
                regs = rr.registers
            return regs

        results = await asyncio.gather(home_assistant(), hearth.read_once(), hearth.read_once())
        assert results[0][:2] == [0x5375, 0x6E53]
        assert results[1] == {"se": True} and results[2] == {"se": True}
        snap = hearth.fill()
        assert snap.grid_power_w is not None
        assert snap.grid_power_w.value == pytest.approx(-1234.0)
        assert emu.client_count() == 1  # the device only ever saw the proxy
        assert proxy.clients_seen == 2
    finally:
        ha.close()
        await hearth.stop()
        await proxy.stop()
        await emu.stop()


async def test_proxy_answers_like_a_gateway_when_upstream_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    emu = await serve("solaredge")
    proxy = ModbusProxy("127.0.0.1", emu.port or 0, timeout_s=0.3)
    port = await proxy.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0,
                                  reconnect_delay=0)
    try:
        assert await client.connect()
        emu.device(1).faults.no_answer = True
        rr = await client.read_holding_registers(40000, count=2, device_id=1)
        assert isinstance(rr, ExceptionResponse) and rr.exception_code == 0x0B
        assert "no reply from upstream" in caplog.text
        emu.device(1).faults.no_answer = False
        rr = await client.read_holding_registers(40000, count=2, device_id=1)
        assert rr.registers == [0x5375, 0x6E53]  # recovered on a fresh upstream connection
        await emu.stop()
        rr = await client.read_holding_registers(40000, count=2, device_id=1)
        assert isinstance(rr, ExceptionResponse) and rr.exception_code in (0x0A, 0x0B)
    finally:
        client.close()
        await proxy.stop()
        await emu.stop()


async def test_proxy_drops_a_client_that_does_not_speak_modbus_tcp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    emu = await serve("solaredge")
    proxy = ModbusProxy("127.0.0.1", emu.port or 0)
    port = await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the proxy
        writer.close()
        assert "sent a bad frame (protocol id" in caplog.text
    finally:
        await proxy.stop()
        await emu.stop()
