"""Overrides (commands and service holds) steer the pure core; hard limits still win."""

from __future__ import annotations

import simkit

from controller.config.models import Mode
from controller.control.controller import Controller
from controller.control.overrides import Overrides
from controller.control.types import Commands, Measurements, Reading
from controller.sim.plant import Plant


def _run(o: Overrides, seconds: int = 400, pv: float = 3000.0, load: float = 400.0,
         **site: object) -> tuple[Commands, Plant]:
    cfg = simkit.site(**{"battery": None, **site})  # the battery would take the surplus
    plant, ctrl = Plant(cfg), Controller(cfg)
    cmds = None
    for t in range(seconds):
        now = float(t)
        cmds = ctrl.step(plant.measure(now, pv, load), now, o)
        plant.step(cmds, 1.0, pv, load, 500.0)
    assert cmds is not None
    return cmds, plant


def test_hold_keeps_every_miner_off_and_says_why() -> None:
    cmds, plant = _run(Overrides(hold_reason="start-up delay (37 s left)"))
    # Miners that can pause are stopped; the Bitaxes (AxeOS, no pause) are commanded at
    # their minimum: that is all their firmware can do.
    assert {c.name: c.run for c in cmds.miners if c.name == "s9"} == {"s9": False}
    assert all(c.power_target_w == 9.0 for c in cmds.miners if c.name != "s9")
    assert ("hold", "miners held off: start-up delay (37 s left)") in [
        (t.code, t.reason) for t in cmds.trips]
    # The S9 is off; the Bitaxes' AxeOS has no pause: held at their minimum, as live.
    assert {m.cfg.name: m.power_w for m in plant.miners} == {
        "s9": 0.0, "bitaxe-1": 9.0, "bitaxe-2": 9.0}


def test_dr_cap_command_caps_total_power() -> None:
    free, _ = _run(Overrides())
    assert free.total_target_w > 1000
    capped, plant = _run(Overrides(dr_cap_w=500.0))
    assert capped.total_target_w <= 500.0
    assert sum(m.power_w for m in plant.miners) <= 500.0 + 1e-6


def test_manual_power_pins_one_miner_and_the_rest_stays_automatic() -> None:
    cmds, _ = _run(Overrides(manual_w={"s9": 700.0}), pv=5000.0)
    by = cmds.by_name()
    assert by["s9"].run and by["s9"].power_target_w == 700.0
    assert by["bitaxe-1"].run and by["bitaxe-2"].run  # still allocated automatically
    off, _ = _run(Overrides(manual_w={"s9": 0.0}), pv=5000.0)
    assert not off.by_name()["s9"].run


def test_manual_power_still_obeys_the_import_limit() -> None:
    d = simkit.site_dict()
    d["site"].update(grid_import_limit_w=1500, main_fuse_a=25)
    cmds, _ = _run(Overrides(manual_w={"s9": 1400.0}), pv=0.0, load=1000.0, site=d["site"])
    # 1500 W limit − 300 W headroom − 1000 W house: 200 W left, below the S9's minimum.
    assert cmds.total_target_w <= 200.0 + 1e-6
    assert not cmds.by_name()["s9"].run


def test_mode_and_tank_target_overrides() -> None:
    ctrl = Controller(simkit.site())
    m = Measurements(grid_power_w=Reading(500.0, 0.0), battery_power_w=Reading(0.0, 0.0),
                     soc_pct=Reading(50.0, 0.0), tank_temp_c=Reading(50.0, 0.0))
    assert ctrl.step(m, 0.0, Overrides(mode=Mode.HEATING)).mode == "heating"
    ctrl.step(m, 1.0, Overrides(tank_target_c=80.0))
    assert ctrl.tank_loop is not None
    assert ctrl.tank_loop.setpoint_c == 69.0  # clamped to max_c − margin, never above
