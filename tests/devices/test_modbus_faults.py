"""Devices misbehave the ways real ones do; the acquisition layer must notice, log with
the device name, never turn a bad reply into a number, back off, and recover alone."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import pytest
from modbus_testkit import VALUES, serve, tcp_device, wait_for
from pymodbus.client import AsyncModbusTcpClient

from controller.devices.acquisition import Acquisition
from controller.devices.poller import Status


async def test_a_silent_device_goes_stale_within_its_timeout_and_others_keep_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    dead = await serve("sma-inverter")
    alive = await serve("eastron-sdm630")
    acq = Acquisition([
        tcp_device("inverter", "sma-inverter", dead.port or 0, role="pv_inverter",
                   period_s=0.1, timeout_s=0.4, retries=0, backoff_max_s=2.0),
        tcp_device("meter", "eastron-sdm630", alive.port or 0, role="grid_meter",
                   period_s=0.1, timeout_s=0.4),
    ])
    try:
        await acq.start()
        inv, meter = acq.poller("inverter"), acq.poller("meter")
        await wait_for(lambda: inv.state.status is Status.OK and meter.state.polls >= 3)
        last_ok = inv.readings["pv_power_w"]
        dead.device(3).faults.no_answer = True
        silenced = time.monotonic()
        await wait_for(lambda: inv.state.status is Status.STALE, 5, "inverter stale")
        # Within one period + one timeout of going silent (plus scheduling slack).
        assert time.monotonic() - silenced < 0.1 + 0.4 + 0.3
        assert "device inverter: read holding 30775+8 failed: no answer within 0.4 s" \
            in caplog.text
        # Its values keep their old time stamp, so the control core sees them age.
        assert inv.readings["pv_power_w"] == last_ok
        # Meanwhile the meter keeps its 0.1 s period.
        n0 = meter.state.polls
        await asyncio.sleep(1.0)
        starts = list(meter.state.poll_starts)[-(meter.state.polls - n0):]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(gaps) >= 7, gaps
        assert max(gaps) < 0.25, gaps
        assert meter.state.status is Status.OK
        # The dead device backs off: period × 2^n, so far fewer tries than periods.
        assert inv.state.failures >= 2
        assert inv.next_delay_s() > 0.1
        assert inv.state.polls - inv.state.failed_polls < meter.state.polls
    finally:
        await acq.stop()
        await dead.stop()
        await alive.stop()


def test_back_off_grows_to_minutes_and_resets() -> None:
    acq = Acquisition([tcp_device("x", "eastron-sdm630", 1, period_s=1.0, backoff_max_s=300)])
    p = acq.pollers[0]
    delays = []
    for n in range(12):
        p.state.failures = n
        delays.append(p.next_delay_s())
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == 300.0
    p.state.failures = 0
    assert p.next_delay_s() == 1.0


@pytest.mark.parametrize("code", [0x02, 0x04, 0x06, 0x0B])
async def test_exception_replies_are_logged_and_never_numbers(
    code: int, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    emu = await serve("victron-gx")
    acq = Acquisition([tcp_device("gx", "victron-gx", emu.port or 0, retries=1)])
    try:
        assert await acq.read_once() == {"gx": True}
        before = dict(acq.pollers[0].readings)
        emu.device(100).faults.exception_code = code
        emu.set_values(VALUES | {"grid_power_w": 3000.0, "grid_power_l1_w": 1000.0,
                                 "soc_pct": 99.0})
        assert await acq.read_once() == {"gx": False}
        assert acq.pollers[0].readings == before  # nothing new, old time stamps
        assert acq.pollers[0].state.status is Status.STALE
        assert f"device gx: read holding 808+15 failed: exception 0x{code:02X}" in caplog.text
        # Busy (0x06) and gateway (0x0B) are retried at once; 0x02 is not.
        tries = emu.device(100).requests
        emu.device(100).faults.exception_code = None
        assert await acq.read_once() == {"gx": True}
        assert acq.pollers[0].readings["soc_pct"].value == 99.0
        assert tries > 0
    finally:
        await acq.stop()
        await emu.stop()


async def test_a_garbage_tcp_frame_is_logged_and_never_a_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    emu = await serve("huawei-sun2000")
    acq = Acquisition([tcp_device("huawei", "huawei-sun2000", emu.port or 0, timeout_s=0.3,
                                  retries=0, connect_delay_s=0.0)])
    try:
        assert await acq.read_once() == {"huawei": True}
        before = dict(acq.pollers[0].readings)
        emu.device(1).faults.garbage = True
        emu.set_values(VALUES | {"soc_pct": 5.0})
        assert await acq.read_once() == {"huawei": False}
        assert acq.pollers[0].readings == before
        assert "device huawei: read holding 32064+2 failed:" in caplog.text
        assert "unreadable reply" in caplog.text or "bad reply" in caplog.text
        emu.device(1).faults.garbage = False
        await wait_for(lambda: acq.pool.links[0]._next_connect_at < time.monotonic(), 5)
        assert await acq.read_once() == {"huawei": True}
        assert acq.pollers[0].readings["soc_pct"].value == pytest.approx(5.0)
    finally:
        await acq.stop()
        await emu.stop()


async def test_a_dropped_connection_is_restored_without_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    emu = await serve("sma-sunny-island")
    acq = Acquisition([tcp_device("si", "sma-sunny-island", emu.port or 0, period_s=0.1,
                                  timeout_s=0.5, backoff_max_s=0.5, role="battery")])
    try:
        await acq.start()
        p = acq.poller("si")
        await wait_for(lambda: p.state.status is Status.OK)
        link = acq.pool.links[0]
        assert link.connects == 1
        assert await emu.drop_connections() == 1
        emu.set_values(VALUES | {"soc_pct": 80.0})
        await wait_for(lambda: link.connects == 2, 10, "a reconnect")
        await wait_for(lambda: p.readings["soc_pct"].value == 80.0, 10, "fresh values")
        assert p.state.status is Status.OK
    finally:
        await acq.stop()
        await emu.stop()


async def test_a_frozen_meter_is_seen_as_stale(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    emu = await serve("eastron-sdm630")
    t = [0.0]
    acq = Acquisition([tcp_device("meter", "eastron-sdm630", emu.port or 0,
                                  role="grid_meter", frozen_after_s=30)],
                      clock=lambda: t[0])
    try:
        await acq.read_once()
        emu.device(1).faults.frozen = True  # the meter keeps showing the same numbers
        for step in range(1, 5):
            t[0] = step * 20.0
            emu.set_values(VALUES | {"grid_power_w": 100.0 * step})
            await acq.read_once()
        r = acq.fill().grid_power_w
        assert r is not None
        assert r.at_s == 0.0  # the time it last changed: 80 s old, the core trips on it
        assert "device meter: grid_power_w frozen at -1234 for 40 s" in caplog.text
        emu.device(1).faults.frozen = False
        t[0] = 100.0
        emu.set_values(VALUES | {"grid_power_w": 42.0})
        await acq.read_once()
        assert acq.fill().grid_power_w == (42.0, 100.0)
    finally:
        await acq.stop()
        await emu.stop()


async def test_a_single_client_device_refuses_a_second_client() -> None:
    emu = await serve("solaredge")
    emu.set_single_client(True)
    first = AsyncModbusTcpClient("127.0.0.1", port=emu.port or 0, timeout=1, retries=0,
                                 reconnect_delay=0)
    second = AsyncModbusTcpClient("127.0.0.1", port=emu.port or 0, timeout=1, retries=0,
                                  reconnect_delay=0)
    try:
        assert await first.connect()
        rr = await first.read_holding_registers(40000, count=2, device_id=1)
        assert rr.registers == [0x5375, 0x6E53]
        await second.connect()
        await wait_for(lambda: not second.connected, 5, "the second client to be closed")
        rr = await first.read_holding_registers(40000, count=2, device_id=1)
        assert rr.registers == [0x5375, 0x6E53]
    finally:
        first.close()
        second.close()
        await emu.stop()


async def test_a_poller_stops_even_when_a_read_swallows_its_cancel() -> None:
    """Python 3.11's asyncio.wait_for (inside pymodbus) returns a reply that arrives in the
    same loop pass as a cancel and drops the cancel: the poller must still stop. Seen as a
    `hearth run` that ignored SIGTERM for 30 s after an RTU noise fault (HIL)."""
    server = await serve("eastron-sdm630")
    acq = Acquisition([tcp_device("meter", "eastron-sdm630", server.port or 0,
                                  role="grid_meter", period_s=0.05, timeout_s=0.4)])
    meter = acq.poller("meter")
    real_read = meter._read
    in_read = asyncio.Event()
    swallowed = 0

    async def read_as_wait_for_does(*args: Any) -> Any:
        nonlocal swallowed
        reply = asyncio.ensure_future(real_read(*args))
        in_read.set()
        try:
            return await asyncio.shield(reply)
        except asyncio.CancelledError:
            swallowed += 1
            return await reply  # the reply is in: returned, the cancel forgotten

    meter._read = read_as_wait_for_does  # type: ignore[method-assign]
    await acq.start()
    task = acq._tasks[0]
    try:
        await wait_for(lambda: meter.state.polls >= 2)
        in_read.clear()
        await in_read.wait()  # the poller is inside a read now
        stopping = asyncio.ensure_future(acq.stop())
        done, _ = await asyncio.wait([stopping], timeout=3)
        assert swallowed == 1
        assert stopping in done, "the poller went on polling after its task was cancelled"
    finally:
        meter._read = real_read  # type: ignore[method-assign]
        while not task.done():  # without the fix: cancel until a cancel lands in a sleep
            task.cancel()
            await asyncio.wait([task], timeout=0.2)
        await acq.stop()
        await server.stop()
