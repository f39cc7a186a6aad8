"""The service in island mode: no grid meter exists, so the start-up hold waits for a fresh
battery reading instead, and the miners then run on PV the full battery cannot take."""

from __future__ import annotations

import random
from pathlib import Path

import simkit
from test_service import FakeTime, Fleet, PlantPorts, Recorder, _advance

from controller.runtime.service import Clock, Service
from controller.sim.plant import Plant


def test_island_service_starts_without_a_grid_meter(tmp_path: Path) -> None:
    d = simkit.site_dict()
    d["control"]["mode"] = "island"
    d["battery"]["initial_soc_pct"] = 100
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 20}
    cfg = simkit.parse_site(d)
    clock = FakeTime()
    ports = PlantPorts(Plant(cfg), clock)
    ports.pv_w, ports.load_w = 8000.0, 400.0  # the battery is full: PV is being curtailed
    service = Service(cfg, [ports], Fleet(ports), [Recorder()], Clock(monotonic=clock),
                      rng=random.Random(3))
    ports.meter_alive = False
    rec = _advance(service, clock, 10)
    assert rec.overrides.hold_reason == "waiting for fresh measurements"
    ports.meter_alive = True
    rec = _advance(service, clock, 5)
    assert rec.measurements.grid_power_w is None  # there is no grid meter, and that is fine
    assert rec.overrides.hold_reason is not None and "start-up delay" in rec.overrides.hold_reason
    rec = _advance(service, clock, 600)
    assert rec.overrides.hold_reason is None
    assert "stale_meter" not in {t.code for t in rec.commands.trips}
    assert rec.commands.mode == "island"
    assert rec.commands.total_target_w > 1000  # mining what would be curtailed
    assert ports.plant.battery is not None and ports.plant.battery.soc_pct > 98
