"""The service's tick loop: start-up hold, start delay, persistence, shutdown, watchdog.

The ports here are in-process adapters over the real plant model, so the orchestration is
tested on real physics; the same service against the Modbus and miner emulators over real
sockets is the integration test of the service issue.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import simkit

from controller.control.types import Commands, MinerReading, Reading
from controller.runtime.ports import TickRecord
from controller.runtime.service import Clock, Service
from controller.sim.plant import Plant


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class PlantPorts:
    """Meters and miners of an in-process plant, stepped by the test."""

    def __init__(self, plant: Plant, clock: FakeTime) -> None:
        self.plant, self.clock = plant, clock
        self.pv_w, self.load_w = 3000.0, 400.0
        self.meter_alive = True
        self._last: dict[str, Reading | None] = {}
        self.stopped_with: str | None = None
        self.source_stopped = False
        self.submitted: list[Commands] = []

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.source_stopped = True

    def readings(self) -> Mapping[str, Any]:
        if self.meter_alive:
            m = self.plant.measure(self.clock(), self.pv_w, self.load_w)
            self._last = {"grid_power_w": m.grid_power_w, "pv_power_w": m.pv_power_w,
                          "battery_power_w": m.battery_power_w, "soc_pct": m.soc_pct,
                          "tank_temp_c": m.tank_temp_c}
        return self._last

    def miner_readings(self) -> Mapping[str, MinerReading]:
        return {mm.cfg.name: mm.reading(self.clock()) for mm in self.plant.miners}

    def submit(self, commands: Commands) -> None:
        self.submitted.append(commands)
        self.plant.step(commands, 1.0, self.pv_w, self.load_w, 300.0)


class Fleet:
    def __init__(self, ports: PlantPorts) -> None:
        self.ports = ports

    async def start(self) -> None: ...

    async def stop(self, shutdown_state: str) -> None:
        self.ports.stopped_with = shutdown_state

    def readings(self) -> Mapping[str, MinerReading]:
        return self.ports.miner_readings()

    def submit(self, commands: Commands) -> None:
        self.ports.submit(commands)


class Recorder:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.ticks: list[TickRecord] = []
        self.closed = False
        self.delay_s = delay_s

    def publish(self, tick: TickRecord) -> None:
        if self.delay_s:
            import time

            time.sleep(self.delay_s)
        self.ticks.append(tick)

    async def close(self) -> None:
        self.closed = True


def _service(tmp_path: Path, delay_max_s: float = 30.0, **svc: Any) -> tuple[
        Service, PlantPorts, FakeTime, Recorder]:
    d = simkit.site_dict()
    del d["battery"]
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": delay_max_s, **svc}
    cfg = simkit.parse_site(d)
    clock = FakeTime()
    ports = PlantPorts(Plant(cfg), clock)
    rec = Recorder()
    service = Service(cfg, [ports], Fleet(ports), [rec], Clock(monotonic=clock),
                      rng=random.Random(7))
    return service, ports, clock, rec


def _advance(service: Service, clock: FakeTime, seconds: int) -> TickRecord:
    rec = None
    for _ in range(seconds):
        rec = service.tick()
        clock.t += 1.0
    assert rec is not None
    return rec


def test_holds_until_fresh_data_then_a_random_start_delay(tmp_path: Path) -> None:
    service, ports, clock, _ = _service(tmp_path)
    ports.meter_alive = False
    rec = _advance(service, clock, 20)
    assert rec.overrides.hold_reason == "waiting for fresh measurements"
    # Miners that can pause are off; AxeOS (no pause) stays commanded at its minimum.
    assert not any(c.run for c in rec.commands.miners if not c.name.startswith("bitaxe"))
    ports.meter_alive = True
    delay = service.start_delay_s
    assert 0 < delay <= 30.0
    rec = _advance(service, clock, int(delay) - 1)
    assert rec.overrides.hold_reason is not None and "start-up delay" in rec.overrides.hold_reason
    rec = _advance(service, clock, 120)
    assert rec.overrides.hold_reason is None
    assert any(c.run for c in rec.commands.miners)


def test_start_delays_differ_between_sites() -> None:
    delays = set()
    for seed in range(20):
        cfg = simkit.site()
        s = Service(cfg, [], Fleet(PlantPorts(Plant(cfg), FakeTime())), rng=random.Random(seed))
        delays.add(round(s.start_delay_s, 3))
    assert len(delays) == 20 and max(delays) <= 60.0


def test_meter_loss_ramps_miners_to_zero_within_the_stale_timeout(tmp_path: Path) -> None:
    service, ports, clock, _ = _service(tmp_path, delay_max_s=0.0)
    rec = _advance(service, clock, 300)
    assert rec.commands.total_target_w > 1000
    ports.meter_alive = False
    rec = _advance(service, clock, int(service.cfg.control.stale_timeout_s) + 1)
    # All that is left is what the no-pause Bitaxes draw at their minimum.
    assert rec.commands.total_target_w == sum(
        c.power_target_w for c in rec.commands.miners if c.name.startswith("bitaxe"))
    assert not any(c.run for c in rec.commands.miners if not c.name.startswith("bitaxe"))
    assert "stale_meter" in {t.code for t in rec.commands.trips}
    ports.meter_alive = True
    rec = _advance(service, clock, 400)
    assert rec.commands.total_target_w > 1000


def test_state_survives_a_restart(tmp_path: Path) -> None:
    service, _, clock, _ = _service(tmp_path, delay_max_s=0.0)
    _advance(service, clock, 200)
    assert service.controller.allocator.state["s9"].running
    service.save_state()
    # A new process: a new monotonic epoch, same wall clock.
    again, _, clock2, _ = _service(tmp_path, delay_max_s=0.0)
    st = again.controller.allocator.state["s9"]
    assert st.running
    switched_ago = clock2.t - st.switched_at_s
    assert 0 < switched_ago < 300  # the minimum on-time keeps counting from the real start


async def test_run_stops_cleanly_with_shutdown_state_and_notifies_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    d = simkit.site_dict()
    d["control"]["tick_s"] = 0.05
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0, "shutdown_state": "off"}
    cfg = simkit.parse_site(d)
    ports = PlantPorts(Plant(cfg), FakeTime())
    ports.clock = lambda: asyncio.get_running_loop().time()  # type: ignore[assignment]
    rec = Recorder()
    service = Service(cfg, [ports], Fleet(ports), [rec])
    task = asyncio.create_task(service.run())
    got: list[str] = []

    def drain() -> None:
        while True:
            try:
                got.append(sock.recv(100).decode())
            except BlockingIOError:
                return

    while len(rec.ticks) < 10:
        await asyncio.wait_for(asyncio.sleep(0.01), 5)
        drain()
    service.stop()
    await asyncio.wait_for(task, 5)
    drain()
    sock.close()
    assert ports.stopped_with == "off"
    assert ports.source_stopped
    assert rec.closed
    assert (tmp_path / "state.json").exists()
    assert got[0] == "READY=1" and got[-1] == "STOPPING=1"
    assert got.count("WATCHDOG=1") >= 9


async def test_a_stalled_systemd_never_blocks_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody reads the notify socket: its queue fills, the loop keeps ticking."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    d = simkit.site_dict()
    d["control"]["tick_s"] = 0.01
    d["service"] = {"data_dir": str(tmp_path)}
    cfg = simkit.parse_site(d)
    ports = PlantPorts(Plant(cfg), FakeTime())
    rec = Recorder()
    service = Service(cfg, [ports], Fleet(ports), [rec])
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(_until(lambda: len(rec.ticks) >= 50), 5)
    service.stop()
    await asyncio.wait_for(task, 5)
    sock.close()


async def _until(cond: Any) -> None:
    while not cond():
        await asyncio.sleep(0.01)


async def test_a_slow_publisher_is_logged_as_an_overrun(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = simkit.site_dict()
    d["control"]["tick_s"] = 0.05
    d["service"] = {"data_dir": str(tmp_path), "tick_overrun_warn_s": 0.02}
    cfg = simkit.parse_site(d)
    ports = PlantPorts(Plant(cfg), FakeTime())
    slow = Recorder(delay_s=0.03)
    service = Service(cfg, [ports], Fleet(ports), [slow])
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(_until(lambda: len(slow.ticks) >= 4), 5)
    service.stop()
    await asyncio.wait_for(task, 5)
    assert service.overruns >= 3
    assert "tick took" in caplog.text


def test_ledger_publisher_records_what_the_service_saw(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from controller.ledger.query import Ledger
    from controller.runtime.ledger_publisher import LedgerPublisher

    d = simkit.site_dict()
    del d["battery"]
    db = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    d["ledger"] = {"database_url": db, "flush_interval_s": 60}
    cfg = simkit.parse_site(d)
    clock = FakeTime()
    epoch = datetime(2025, 6, 1, 10, 0, tzinfo=UTC).timestamp() - clock.t
    ports = PlantPorts(Plant(cfg), clock)
    pub = LedgerPublisher(cfg)
    service = Service(cfg, [ports], Fleet(ports), [pub],
                      Clock(monotonic=clock, utc=lambda: datetime.fromtimestamp(epoch + clock.t,
                                                                               UTC)))
    _advance(service, clock, 3600)
    asyncio.run(pub.close())
    assert pub.written == 3600
    led = Ledger.open(db)
    tot = led.totals()
    led.close()
    # An hour is four 15-min intervals; a live shutdown leaves the last one open, to be
    # completed after the restart.
    assert tot.intervals == 3
    assert tot.sats > 0
    assert float(tot["miner_kwh"]) > 0.5  # the S9 ran on the 2.6 kW surplus


def test_every_on_off_switch_is_saved_at_once(tmp_path: Path) -> None:
    """A SIGKILL right after a switch must not lose it (state saved on switches, not only
    every state_save_interval_s)."""
    import json

    service, _, clock, _ = _service(tmp_path, delay_max_s=0.0, state_save_interval_s=3600)
    for _ in range(300):
        service.tick()
        clock.t += 1.0
        if service.controller.allocator.state["s9"].running:
            break
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["miners"]["s9"]["running"] is True


def test_ledger_publisher_retries_a_ledger_that_could_not_be_opened(tmp_path: Path) -> None:
    """A busy or briefly absent database at start must not cost the whole run's revenue:
    the publisher drops samples while it cannot write and opens the ledger again."""
    from controller.ledger.writer import open_site_writer
    from controller.runtime.ledger_publisher import LedgerPublisher

    d = simkit.site_dict()
    del d["battery"]
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    d["ledger"] = {"database_url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"}
    cfg = simkit.parse_site(d)
    tries: list[int] = []

    def flaky(c: Any) -> Any:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("database is locked")
        return open_site_writer(c)

    clock = FakeTime()
    ports = PlantPorts(Plant(cfg), clock)
    pub = LedgerPublisher(cfg, opener=flaky, reopen_s=0.0)
    service = Service(cfg, [ports], Fleet(ports), [pub], Clock(monotonic=clock))
    _advance(service, clock, 120)
    asyncio.run(pub.close())
    assert len(tries) == 2
    assert pub.written >= 119  # only the sample that met the failed open is lost
