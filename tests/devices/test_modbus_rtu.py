"""The SDM630 over real Modbus RTU: a pymodbus serial server on one end of a socat pty
pair, the acquisition layer on the other, CRC-checked RTU frames in between."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator

import pytest
from modbus_testkit import VALUES, tolerance, wait_for

from controller.config.devices import DeviceConfig
from controller.devices.acquisition import Acquisition
from controller.devices.poller import Status
from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator, PtyPair

pytestmark = pytest.mark.skipif(shutil.which("socat") is None,
                                reason="socat missing: `make system-deps` installs it")


def rtu_device(name: str, port: str, unit_id: int, **kw: object) -> DeviceConfig:
    return DeviceConfig(name=name, role="grid_meter", map="eastron-sdm630", transport="rtu",
                        serial_port=port, baudrate=9600, parity="N", unit_id=unit_id,
                        **kw)  # type: ignore[arg-type]


@pytest.fixture
async def bus() -> AsyncIterator[tuple[PtyPair, ModbusEmulator]]:
    """An RS-485 bus with two SDM630 meters, unit 1 and unit 2."""
    pty = PtyPair().start()
    emu = ModbusEmulator([EmulatedDevice(1, DeviceImage("eastron-sdm630")),
                          EmulatedDevice(2, DeviceImage("eastron-sdm630"))], name="bus")
    emu.set_values(VALUES)
    await emu.start_rtu(pty.device_end, baudrate=9600, parity="N")
    try:
        yield pty, emu
    finally:
        await emu.stop()
        pty.stop()


async def test_sdm630_over_rtu_reads_the_plant_values(
    bus: tuple[PtyPair, ModbusEmulator],
) -> None:
    pty, _emu = bus
    acq = Acquisition([rtu_device("meter", pty.host_end, 1, timeout_s=1.0)])
    try:
        assert await acq.read_once() == {"meter": True}
        got = acq.pollers[0].readings
        for qty in ("grid_power_w", "grid_power_l1_w", "grid_power_l2_w", "grid_power_l3_w",
                    "grid_voltage_l1_v", "grid_current_l3_a", "grid_frequency_hz"):
            assert got[qty].value == pytest.approx(VALUES[qty], abs=tolerance(qty)), qty
        assert acq.fill().grid_power_w is not None
        assert acq.fill().grid_power_w.value == pytest.approx(-1234.0)  # type: ignore[union-attr]
        # The SDM630 serves input registers (FC 4): three batched reads per poll.
        assert [b.table for b in acq.pollers[0].plan.reads] == ["input"] * 3  # type: ignore[union-attr]
    finally:
        await acq.stop()


async def test_two_meters_share_the_bus_and_a_silent_one_goes_stale(
    bus: tuple[PtyPair, ModbusEmulator], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    pty, emu = bus
    meter2 = VALUES | {"grid_power_w": 777.0}
    emu.device(2).set_values(meter2)
    acq = Acquisition([
        rtu_device("main", pty.host_end, 1, timeout_s=0.3, period_s=0.2, retries=0,
                   provides=["grid_power_w"]),
        rtu_device("sub", pty.host_end, 2, timeout_s=0.3, period_s=0.2, retries=0,
                   provides=["grid_voltage_l1_v"]),
    ])
    try:
        assert len(acq.pool.links) == 1  # one serial port, one connection
        assert await acq.read_once() == {"main": True, "sub": True}
        emu.device(2).faults.no_answer = True
        await acq.start()
        sub = acq.poller("sub")
        await wait_for(lambda: sub.state.status is Status.STALE, 5, "sub to go stale")
        assert "device sub: read input 0+2 failed: no answer within 0.3 s" in caplog.text
        # The other meter on the same bus keeps reading.
        main = acq.poller("main")
        n = main.state.polls
        await wait_for(lambda: main.state.polls >= n + 3, 5, "main to keep polling")
        assert main.state.status is Status.OK
        emu.device(2).faults.no_answer = False
        await wait_for(lambda: sub.state.status is Status.OK, 10, "sub to recover")
    finally:
        await acq.stop()


async def test_garbage_on_the_line_is_logged_and_never_a_number(
    bus: tuple[PtyPair, ModbusEmulator], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    pty, emu = bus
    acq = Acquisition([rtu_device("meter", pty.host_end, 1, timeout_s=0.3, retries=0)])
    try:
        assert await acq.read_once() == {"meter": True}
        before = acq.pollers[0].readings["grid_power_w"]
        emu.device(1).faults.garbage = True
        emu.set_values(VALUES | {"grid_power_w": 9999.0})
        assert await acq.read_once() == {"meter": False}
        assert "device meter:" in caplog.text and "unreadable reply" in caplog.text
        assert acq.pollers[0].readings["grid_power_w"] == before  # old value, old time
        emu.device(1).faults.garbage = False
        assert await acq.read_once() == {"meter": True}
        assert acq.pollers[0].readings["grid_power_w"].value == pytest.approx(9999.0)
    finally:
        await acq.stop()
