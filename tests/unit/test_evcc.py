"""The evcc peer's rules, each pinned on small synthetic measurements (controller/control/
evcc.py names the evcc source of each): the 30 s cycle, the enable and disable delays and
thresholds, modulation between min and max, priority by efficiency, residual power and
battery priority, the temperature limit, round robin. Then the peer in the plant: its
min on/off violations are counted, Hearth's stay 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simkit

from controller.cli import main
from controller.config import SiteConfig
from controller.control.evcc import EvccController
from controller.control.types import Commands, Measurements, MinerReading, Reading
from controller.sim.report import summarize
from controller.sim.runner import simulate


def _miner(name: str, j_per_th: float, lo: float = 600.0, hi: float = 1400.0) -> dict[str, Any]:
    return {"name": name, "kind": "test", "actuation": "power_target", "min_power_w": lo,
            "max_power_w": hi, "idle_power_w": 40, "restart_s": 30, "stop_s": 2,
            "ramp_w_per_s": 50, "min_on_s": 300, "min_off_s": 300, "heats_tank": False,
            "efficiency": [{"power_w": lo, "j_per_th": j_per_th}],
            "driver": {"api": "braiins-os", "host": "192.0.2.1"}}


def _site(*miners: dict[str, Any], battery: dict[str, Any] | None = None,
          tank: bool = False) -> SiteConfig:
    d = simkit.site_dict()
    d["miners"] = list(miners) or [_miner("a", 80.0)]
    d["battery"] = {**d["battery"], **battery} if battery is not None else None
    if tank:
        for m in d["miners"]:
            m["heats_tank"] = True
    else:
        d["tank"] = None
    return simkit.parse_site({k: v for k, v in d.items() if v is not None})


def _m(grid_w: float | None, now: float, miners: dict[str, float] | None = None,
       battery_w: float | None = None, soc: float | None = None,
       tank_c: float | None = None) -> Measurements:
    def rd(v: float | None) -> Reading | None:
        return None if v is None else Reading(v, now)

    return Measurements(
        grid_power_w=rd(grid_w), battery_power_w=rd(battery_w), soc_pct=rd(soc),
        tank_temp_c=rd(tank_c),
        miners={n: MinerReading(w, 0.0, w > 0, now) for n, w in (miners or {}).items()})


def _on(c: Commands, name: str = "a") -> float | None:
    """The miner's power target, None when it is told to stop."""
    cmd = c.by_name()[name]
    return cmd.power_target_w if cmd.run else None


def _drive(ctrl: EvccController, seconds: range, grid_w: float, power_w: float = 0.0,
           name: str = "a") -> list[float | None]:
    return [_on(ctrl.step(_m(grid_w, float(t), {name: power_w}), float(t)), name)
            for t in seconds]


# -- 1. the 30 s cycle ----------------------------------------------------------------------

def test_it_acts_only_every_30_s_and_holds_its_commands_between() -> None:
    ctrl = EvccController(_site())
    # Enabled after the 60 s enable delay (cycles at 0, 30, 60), not a second earlier.
    seen = _drive(ctrl, range(0, 61), -2000.0)
    assert seen[:60] == [None] * 60 and seen[60] == 600.0
    # Now running at 600 W with 500 W more surplus: it waits for the cycle at 90 s.
    seen = _drive(ctrl, range(61, 91), -500.0, 600.0)
    assert seen[:29] == [600.0] * 29 and seen[29] == 1100.0
    assert ctrl.cycles == 4


def test_a_coarse_step_runs_every_cycle_it_spans() -> None:
    # 1-min trace rows: two 30 s cycles per row, on the same snapshot.
    ctrl = EvccController(_site())
    seen = [_on(ctrl.step(_m(-2000.0, t, {"a": 0.0}), t)) for t in (0.0, 60.0)]
    assert seen == [None, 600.0] and ctrl.cycles == 2  # one loadpoint: once per row


# -- 2. enable: surplus >= minimum for the enable delay ------------------------------------

def test_enable_needs_the_minimum_as_surplus_for_the_whole_delay() -> None:
    ctrl = EvccController(_site())
    assert _drive(ctrl, range(0, 301, 30), -599.0) == [None] * 11  # 1 W short: never
    ctrl = EvccController(_site())
    # Enough surplus at 0 s, a dip at 30 s resets the timer, then 60 s again from 60 s.
    seen = [_on(ctrl.step(_m(g, t, {"a": 0.0}), t))
            for t, g in ((0.0, -700.0), (30.0, -300.0), (60.0, -700.0), (90.0, -700.0),
                         (120.0, -700.0))]
    assert seen == [None, None, None, None, 600.0]


# -- 3. disable: import for the disable delay, held at minimum meanwhile --------------------

def _enabled(cfg: SiteConfig | None = None, **kw: Any) -> EvccController:
    ctrl = EvccController(cfg or _site(), **kw)
    _drive(ctrl, range(0, 61, 30), -2000.0)
    assert ctrl.loadpoints[0].enabled
    return ctrl


def test_disable_after_180_s_of_import_held_at_minimum_until_then() -> None:
    ctrl = _enabled()
    seen = _drive(ctrl, range(90, 271, 30), 200.0, 600.0)  # importing from 90 s
    assert seen == [600.0] * 6 + [None]  # 90 .. 240 at minimum, off at 270 (90 + 180)


def test_export_inside_the_disable_delay_resets_it() -> None:
    ctrl = _enabled()
    _drive(ctrl, range(90, 211, 30), 200.0, 600.0)  # 120 s of import
    assert _drive(ctrl, [240], -50.0, 600.0) == [650.0]  # exports: timer reset
    assert _drive(ctrl, range(270, 421, 30), 200.0, 600.0) == [600.0] * 6
    assert _drive(ctrl, [450], 200.0, 600.0) == [None]  # 180 s after 270


def test_short_of_its_minimum_but_exporting_it_stays_on() -> None:
    ctrl = _enabled()
    # 600 W drawn, 100 W exported: the target (700) is above the minimum, modulated.
    assert _drive(ctrl, [90], -100.0, 600.0) == [700.0]
    # A miner still ramping (400 W read) with 100 W export: target 500 < 600, but no import:
    # held at its minimum, no disable timer.
    assert _drive(ctrl, range(120, 421, 30), -100.0, 400.0) == [600.0] * 11
    assert ctrl.loadpoints[0].pv_timer_s is None


def test_thresholds_move_the_switching_points() -> None:
    # enable threshold -1500: start only at 1.5 kW export; disable threshold 300: off only
    # when more than 300 W is imported.
    cfg = _site()
    ctrl = EvccController(cfg, enable_threshold_w=-1500.0, disable_threshold_w=300.0)
    assert _drive(ctrl, range(0, 91, 30), -1400.0) == [None] * 4
    assert _drive(ctrl, range(120, 181, 30), -1500.0) == [None, None, 600.0]
    assert _drive(ctrl, range(210, 601, 30), 250.0, 600.0) == [600.0] * 14  # never off
    assert _drive(ctrl, range(630, 811, 30), 300.0, 600.0)[-1] is None


# -- 4. modulation between min and max ----------------------------------------------------

def test_modulates_on_measured_power_between_min_and_max() -> None:
    ctrl = _enabled()
    assert _drive(ctrl, [90], -300.0, 800.0) == [1100.0]  # measured + export
    assert _drive(ctrl, [120], 250.0, 1100.0) == [850.0]  # measured − import
    assert _drive(ctrl, [150], -900.0, 850.0) == [1400.0]  # capped at its maximum
    # The measured power counts, not the target: a miner that lags its target is not
    # pushed further ("slow-acting heating devices": IntegratedDevice).
    assert _drive(ctrl, [180], -300.0, 1000.0) == [1300.0]


# -- 5. several miners: priority by efficiency, round robin --------------------------------

def test_priority_goes_to_the_most_efficient_miner() -> None:
    cfg = _site(_miner("a", 100.0), _miner("b", 60.0), _miner("c", 100.0))
    prio = {lp.name: lp.priority for lp in EvccController(cfg).loadpoints}
    assert prio["b"] > prio["a"] == prio["c"]  # equal efficiency, equal priority


def test_the_higher_priority_miner_takes_the_lower_ones_power() -> None:
    cfg = _site(_miner("a", 100.0), _miner("b", 60.0))
    ctrl = EvccController(cfg, round_robin=False)
    for lp in ctrl.loadpoints:
        lp.enabled, lp.offered_w = True, 1000.0
    c = ctrl.step(_m(0.0, 0.0, {"a": 1000.0, "b": 1000.0}), 0.0)
    # b (efficient, updated first) sees a's 1000 W as available: 2000 W, capped at 1400.
    # a then sees the 400 W b is about to add as import: 600 W, its minimum, and waits.
    assert (_on(c, "b"), _on(c, "a")) == (1400.0, 600.0)
    assert ctrl.loadpoints[0].pv_timer_s is None  # 400 W over its minimum: no import yet


def test_a_starting_higher_priority_miner_reserves_its_power() -> None:
    cfg = _site(_miner("a", 100.0), _miner("b", 60.0))
    ctrl = EvccController(cfg, round_robin=False)
    # 1000 W export: b (efficient) starts its enable timer and reserves its 1400 W max, so
    # a does not start on the same watts.
    for t in (0.0, 30.0, 60.0):
        c = ctrl.step(_m(-1000.0, t, {"a": 0.0, "b": 0.0}), t)
    assert _on(c, "b") == 600.0 and _on(c, "a") is None
    assert ctrl.loadpoints[0].pv_timer_s is None


def test_round_robin_updates_one_miner_per_cycle() -> None:
    cfg = _site(_miner("a", 100.0), _miner("b", 60.0))
    ctrl = EvccController(cfg)
    timers = []
    for t in range(0, 91, 30):
        ctrl.step(_m(-3000.0, float(t), {"a": 0.0, "b": 0.0}), float(t))
        timers.append(tuple(lp.pv_timer_s for lp in ctrl.loadpoints))
    # a at 0 s, b at 30 s, a at 60 s, b at 90 s: each sees its own timer run 60 s.
    assert timers[:2] == [(0.0, None), (0.0, 30.0)]
    assert [lp.enabled for lp in ctrl.loadpoints] == [True, True]
    assert ctrl.cycles == 4


# -- 6. residual power and the battery -----------------------------------------------------

def test_residual_power_keeps_a_margin_of_export() -> None:
    ctrl = _enabled(residual_power_w=100.0)
    assert _drive(ctrl, [90], -300.0, 800.0) == [1000.0]  # 300 W export − 100 W margin


def test_battery_below_priority_soc_keeps_its_charge_and_a_100_w_margin() -> None:
    cfg = _site(battery={"priority_soc_pct": 80.0})
    ctrl = _enabled(cfg)
    # Below 80 %: the 500 W going into the battery is not surplus; residual becomes 100 W.
    c = ctrl.step(_m(-300.0, 90.0, {"a": 800.0}, battery_w=500.0, soc=50.0), 90.0)
    assert _on(c) == 1000.0
    # Above it, the battery's charge counts as surplus (evcc: the loadpoint comes first).
    c = ctrl.step(_m(-300.0, 120.0, {"a": 1000.0}, battery_w=300.0, soc=90.0), 120.0)
    assert _on(c) == 1400.0
    # Discharging is a deficit at any SoC.
    c = ctrl.step(_m(0.0, 150.0, {"a": 1400.0}, battery_w=-400.0, soc=90.0), 150.0)
    assert _on(c) == 1000.0


def test_battery_above_buffer_soc_keeps_it_at_minimum_without_a_disable_timer() -> None:
    cfg = _site(battery={"priority_soc_pct": 50.0, "miners_may_discharge_above_soc_pct": 60.0})
    ctrl = _enabled(cfg)
    for t in range(90, 601, 30):
        c = ctrl.step(_m(0.0, float(t), {"a": 600.0}, battery_w=-600.0, soc=70.0), float(t))
    assert _on(c) == 600.0 and ctrl.loadpoints[0].pv_timer_s is None
    c = ctrl.step(_m(0.0, 630.0, {"a": 600.0}, battery_w=-600.0, soc=59.0), 630.0)
    assert ctrl.loadpoints[0].pv_timer_s == 630.0  # below the buffer: the timer runs


# -- 7. temperature limit, no meter --------------------------------------------------------

def test_tank_limit_switches_a_tank_miner_off_at_once() -> None:
    cfg = _site(tank=True)
    ctrl = _enabled(cfg)
    assert cfg.tank is not None
    hot = cfg.tank.max_c - cfg.control.tank_max_margin_c
    c = ctrl.step(_m(-2000.0, 90.0, {"a": 600.0}, tank_c=hot), 90.0)
    assert _on(c) is None and [t.code for t in c.trips] == ["tank_max"]


def test_without_a_grid_reading_the_commands_hold() -> None:
    ctrl = _enabled()
    assert _drive(ctrl, [90], -300.0, 600.0) == [900.0]
    c = ctrl.step(_m(None, 120.0, {"a": 900.0}), 120.0)
    assert _on(c) == 900.0


# -- 8. in the plant ----------------------------------------------------------------------

def _flapping_surplus() -> Any:
    """Surplus that comes and goes every 4 minutes: longer than evcc's delays, shorter
    than the miners' 300 s minimum on/off times."""
    cycle = np.concatenate([np.full(240, 2500.0), np.zeros(240)])
    return simkit.trace(np.tile(cycle, 8), 300.0, step_s=1.0)


def test_in_the_plant_evcc_breaks_min_on_off_times_and_hearth_does_not() -> None:
    cfg = _site(_miner("a", 80.0))
    tr = _flapping_surplus()
    s = {p: summarize(simulate(cfg, tr, p, progress=False)) for p in ("evcc", "hearth")}
    assert s["evcc"]["min_on_off_violations"] >= 4
    assert s["evcc"]["miner_starts"]["a"] >= 5
    assert s["hearth"]["min_on_off_violations"] == 0
    assert s["evcc"]["controller"] == "evcc"


def test_hearth_sim_cli_takes_the_evcc_controllers(tmp_path: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.csv"
    rows = ["time,pv_w,load_w"] + [
        f"2026-06-01T{h:02d}:{mi:02d}:00Z,{3000.0 if 8 <= h < 16 else 0.0},300"
        for h in range(24) for mi in range(60)]
    trace.write_text("\n".join(rows) + "\n")
    site = simkit.HOUSE
    for name in ("evcc", "evcc-all"):
        assert main(["sim", "--config", str(site), "--trace", str(trace),
                     "--controller", name, "--summary", str(tmp_path / f"{name}.json")]) == 0
    out = (tmp_path / "evcc.json").read_text()
    assert '"controller": "evcc"' in out and '"min_on_off_violations"' in out
