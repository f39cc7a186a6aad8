"""The import cap's house-load estimate is time-aligned with the miners' readbacks.

Found by the HIL scenario `winter-night-tight-limit`: the meter is read every tick, the
miners every 2 s. While an S9 ramps, the meter already sees its power while its readback
is still the boot's idle draw, so `grid − miners` overstated the house's load, the cap fell
under the S9's minimum and it was forced off seconds after every start. A small plant in
the test's own loop reproduces that skew exactly.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from controller.config.models import SiteConfig
from controller.control.controller import Controller
from controller.control.types import Measurements, MinerReading, Reading

ROOT = Path(__file__).resolve().parents[2]
HOUSE_W = 201.0


def _site() -> SiteConfig:
    raw = tomllib.loads((ROOT / "hil" / "sites" / "house-10kwp.toml").read_text())
    raw.pop("battery")
    raw["site"]["grid_import_limit_w"] = 1200
    raw["control"].update(on_delay_s=2, off_delay_s=2, stale_timeout_s=3)
    raw["tank"]["initial_c"] = 45
    raw["backup_heat"] = {"kind": "resistive", "efficiency": 1.0, "fuel_price_per_kwh": "0.15"}
    for m in raw["miners"]:
        m.update(min_on_s=3, min_off_s=3, restart_s=2, stop_s=0.5, heats_tank=True)
    raw["miners"][0]["ramp_w_per_s"] = 300
    return SiteConfig.model_validate(raw)


def test_a_ramping_miner_seen_by_the_meter_before_its_readback_is_not_forced_off() -> None:
    cfg = _site()
    ctrl = Controller(cfg, tick_s=0.5)
    power = {m.name: 0.0 for m in cfg.miners}
    phase = {m.name: "off" for m in cfg.miners}
    boot_left = {m.name: 0.0 for m in cfg.miners}
    target = {m.name: 0.0 for m in cfg.miners}
    readback: dict[str, MinerReading] = {}
    by_name = {m.name: m for m in cfg.miners}
    forced: list[float] = []
    starts = 0
    peak_grid = 0.0
    for i in range(160):  # 80 s
        now = i * 0.5
        if i % 4 == 0:  # the fleet polls each miner every 2 s
            readback = {n: MinerReading(power[n], 0.0, phase[n] != "off", now,
                                        can_pause=not n.startswith("bitaxe"))
                        for n in power}
        grid = HOUSE_W + sum(power.values())
        peak_grid = max(peak_grid, grid)
        m = Measurements(grid_power_w=Reading(grid, now), tank_temp_c=Reading(45.0, now),
                         miners=readback, import_price_per_kwh=0.14559,
                         export_price_per_kwh=-0.00441)
        cmds = ctrl.step(m, now)
        forced += [now for t in cmds.trips if t.code == "forced_off"]
        # The plant: boot at idle for restart_s, then ramp toward the target.
        for c in cmds.miners:
            mc = by_name[c.name]
            if c.run and phase[c.name] == "off":
                phase[c.name], boot_left[c.name] = "boot", mc.restart_s
                power[c.name] = mc.idle_power_w
                starts += c.name == "s9"
            elif not c.run:
                phase[c.name], power[c.name] = "off", 0.0
            target[c.name] = c.power_target_w
        for n, ph in phase.items():
            if ph == "boot":
                boot_left[n] -= 0.5
                if boot_left[n] <= 0:
                    phase[n] = "run"
            elif ph == "run":
                step = by_name[n].ramp_w_per_s * 0.5
                power[n] = min(power[n] + step, target[n]) if target[n] > power[n] \
                    else max(power[n] - step, target[n])
    assert forced == []
    assert starts == 1
    assert phase["s9"] == "run" and power["s9"] >= 600
    assert peak_grid <= 1200 - cfg.control.import_headroom_w + 50
