"""The service's price feed: the prices file (parsing, refusal, reload) and a running service
that picks up a changed file on its next ticks."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import simkit

from controller.control.types import Commands, MinerReading, Reading
from controller.errors import InputError
from controller.runtime.ports import TickRecord
from controller.runtime.prices import PriceFeed, build_series, parse_prices_csv
from controller.runtime.service import Service
from controller.sim.plant import Plant

GOOD = """time,import_price,export_price
2026-03-01T00:00:00+01:00,0.25,0.05
2026-03-01T00:15:00+01:00,-0.02,-0.10
2026-03-01T00:30:00+01:00,0.40,0.20
"""


def test_series_periods_run_until_the_next_row() -> None:
    s = parse_prices_csv(GOOD, "p.csv")
    t0 = datetime(2026, 2, 28, 23, 0, tzinfo=UTC).timestamp()
    assert s.at(t0 - 1) is None
    assert s.at(t0) == (0.25, 0.05)
    assert s.at(t0 + 899) == (0.25, 0.05)
    assert s.at(t0 + 900) == (-0.02, -0.10)
    assert s.at(t0 + 1800 + 899) == (0.40, 0.20)  # the last lasts as long as the one before
    assert s.at(t0 + 2700) is None
    imp, _exp = s.window(t0 + 600, 900, 4)
    assert imp[:3] == [0.25, -0.02, 0.40] and imp[3] != imp[3]  # NaN past the end


@pytest.mark.parametrize(("text", "where", "reason"), [
    ("time,import_price,export_price\n2026-03-01T00:00:00,0.2,0.1\n", "line 2 time",
     "no UTC offset"),
    ("time,import_price,export_price\n2026-03-01T00:00:00Z,abc,0.1\n", "line 2 import_price",
     "not a number"),
    ("time,import_price,export_price\n2026-03-01T00:00:00Z,0.2,0.1\n"
     "2026-03-01T01:00:00Z,0.2,120\n", "line 3 export_price", "per MWh"),
    ("time,import_price,export_price\n2026-03-01T01:00:00Z,0.2,0.1\n"
     "2026-03-01T00:00:00Z,0.2,0.1\n", "line 3 time", "strictly increasing"),
    ("time,import_price\n2026-03-01T00:00:00Z,0.2\n", "line 1", "export_price"),
    ("time,import_price,export_price\n2026-03-01T00:00:00Z,0.2\n", "row 2", "2 fields"),
])
def test_bad_rows_are_refused_naming_line_and_field(text: str, where: str, reason: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_prices_csv(text, "p.csv")
    assert any(p.where == where and reason in p.reason for p in exc.value.problems), \
        exc.value.render()


def test_json_series_rows_name_their_index() -> None:
    with pytest.raises(InputError) as exc:
        build_series([("prices[0]", "2026-03-01T00:00:00Z", 0.1, True),
                      ("prices[1]", 5, "x", 0.1)], "cmd/prices")
    wheres = {p.where for p in exc.value.problems}
    assert wheres == {"prices[0] export_price", "prices[1] time", "prices[1] import_price"}


def _bump(path: Path, text: str) -> None:
    """Write and make sure the mtime moves even on a coarse-clock file system."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_feed_reloads_on_change_and_keeps_the_last_good_series(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = simkit.site_dict()
    d["tariffs"]["prices_file"] = "prices.csv"
    cfg = simkit.parse_site(d)
    feed = PriceFeed(cfg, tmp_path)
    now = datetime(2026, 3, 1, 0, 5, tzinfo=UTC).timestamp()
    assert not feed.refresh()  # no file yet: [tariffs]
    assert feed.prices_at(now) == (0.32, 0.05)
    f = tmp_path / "prices.csv"
    _bump(f, "time,import_price,export_price\n2026-03-01T00:00:00Z,0.11,0.01\n")
    assert feed.refresh() and feed.prices_at(now) == (0.11, 0.01)
    assert not feed.refresh()  # unchanged: not re-read
    with caplog.at_level(logging.ERROR):
        _bump(f, "time,import_price,export_price\n2026-03-01T00:00:00Z,0.11,oops\n")
        assert not feed.refresh()
    assert feed.prices_at(now) == (0.11, 0.01)  # last good kept
    assert feed.last_error is not None and "line 2 export_price" in feed.last_error
    assert "line 2 export_price" in caplog.text
    assert feed.prices_at(now + 7200) == (0.32, 0.05)  # outside the series: [tariffs]


class _Ports:
    """A fresh meter reading from an in-process plant, and a fleet that steps it."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant

    async def start(self) -> None: ...

    async def stop(self, *_: Any) -> None: ...

    def readings(self) -> Mapping[str, Reading | None]:
        m = self.plant.measure(time.monotonic(), 3000.0, 400.0)
        return {"grid_power_w": m.grid_power_w, "tank_temp_c": m.tank_temp_c,
                "soc_pct": m.soc_pct, "battery_power_w": m.battery_power_w}

    def miner_readings(self) -> Mapping[str, MinerReading]:
        return {mm.cfg.name: mm.reading(time.monotonic()) for mm in self.plant.miners}


class _Fleet:
    def __init__(self, ports: _Ports) -> None:
        self.ports = ports

    async def start(self) -> None: ...

    async def stop(self, shutdown_state: str) -> None: ...

    def readings(self) -> Mapping[str, MinerReading]:
        return self.ports.miner_readings()

    def submit(self, commands: Commands) -> None:
        self.ports.plant.step(commands, 0.05, 3000.0, 400.0, 300.0)


class _Recorder:
    def __init__(self) -> None:
        self.ticks: list[TickRecord] = []

    def publish(self, tick: TickRecord) -> None:
        self.ticks.append(tick)

    async def close(self) -> None: ...


async def _until(rec: _Recorder, pred: Any, timeout_s: float = 10.0) -> TickRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if rec.ticks and pred(rec.ticks[-1]):
            return rec.ticks[-1]
        await asyncio.sleep(0.02)
    last = rec.ticks[-1].measurements if rec.ticks else None
    raise AssertionError(f"condition not met within {timeout_s} s; last snapshot {last}")


async def test_a_running_service_picks_up_a_changed_prices_file(tmp_path: Path) -> None:
    d = simkit.site_dict()
    d["control"]["tick_s"] = 0.05
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    d["tariffs"]["prices_file"] = str(tmp_path / "prices.csv")
    cfg = simkit.parse_site(d)
    f = tmp_path / "prices.csv"
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rows = [f"{(start + timedelta(minutes=15 * k)).isoformat()},{{imp}},{{exp}}"
            for k in range(12)]
    template = "time,import_price,export_price\n" + "\n".join(rows) + "\n"
    _bump(f, template.format(imp="0.21", exp="0.04"))
    ports = _Ports(Plant(cfg))
    rec = _Recorder()
    service = Service(cfg, [ports], _Fleet(ports), [rec], prices=PriceFeed(cfg, poll_s=0.05))
    task = asyncio.create_task(service.run())
    try:
        t = await _until(rec, lambda r: r.measurements.import_price_per_kwh == 0.21)
        assert t.measurements.export_price_per_kwh == 0.04
        # A negative-price scenario written while the service runs.
        _bump(f, template.format(imp="-0.05", exp="-0.12"))
        t = await _until(rec, lambda r: r.measurements.import_price_per_kwh == -0.05)
        assert t.measurements.export_price_per_kwh == -0.12
        # A broken file: refused, the service keeps the last good prices and keeps ticking.
        _bump(f, template.format(imp="0.30", exp="n/a"))
        await _until(rec, lambda r: service.prices.last_error is not None)
        n = len(rec.ticks)
        await _until(rec, lambda r: len(rec.ticks) > n + 3)
        assert rec.ticks[-1].measurements.import_price_per_kwh == -0.05
        assert "export_price" in (service.prices.last_error or "")
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)
