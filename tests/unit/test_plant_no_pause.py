"""The plant does only what the drivers can do: a miner whose API has no pause (AxeOS) is
held at its minimum power when told to stop, never 0 W, in `hearth sim` and behind the HIL
rig's emulators alike. Which miners those are, the driver class decides from the miner's
`driver` table (`MinerDriver.can_pause_with`: AxeOS only with `use_pause`): data, not a
name."""

from __future__ import annotations

import numpy as np
import pytest
import simkit

from controller.config.models import MinerConfig
from controller.control.types import MinerCommand
from controller.miners.axeos import AxeOsDriver, PowerCurve
from controller.miners.factory import DRIVER_CLASSES, can_pause
from controller.sim.plant import Plant
from controller.sim.plant.miners import MinerModel
from controller.sim.report import summarize
from controller.sim.runner import simulate
from hil.miners.core import EmulatedMiner


def _bitaxe(api: str = "axeos") -> MinerConfig:
    cfg = simkit.site().miners[1]
    assert cfg.kind == "bitaxe-gamma" and cfg.driver["api"] == "axeos"
    return cfg.model_copy(update={"driver": {**cfg.driver, "api": api}})


def test_the_fact_is_the_drivers_and_follows_the_site_file() -> None:
    """AxeOS pauses only with `use_pause` (firmware with /api/system/pause); every other
    driver that actuates can pause. The plant asks the same driver class the service
    builds, and a driver built from the same table agrees."""
    bitaxe = _bitaxe()
    assert not can_pause(bitaxe)
    assert can_pause(_bitaxe("braiins-os"))  # the same board, another api: nothing else
    with_pause = bitaxe.model_copy(update={"driver": {**bitaxe.driver, "use_pause": True}})
    assert can_pause(with_pause) and MinerModel(with_pause).phase == "off"
    for m in (bitaxe, with_pause):
        drv = AxeOsDriver(m, host="127.0.0.1", port=9, curve=PowerCurve.load("bitaxe-gamma"),
                          use_pause=bool(m.driver.get("use_pause", False)))
        assert drv.caps.can_pause == can_pause(m)
    assert [api for api, cls in DRIVER_CLASSES.items() if not cls.can_pause_with(None)] \
        == ["axeos", "cgminer"]  # cgminer: read-only telemetry, it cannot actuate at all


def test_a_bitaxe_told_to_stop_keeps_drawing_its_minimum() -> None:
    cfg = _bitaxe()
    m = MinerModel(cfg)
    # A powered AxeOS board hashes: it starts running at its minimum, not off.
    assert m.phase == "running" and m.power_w == cfg.min_power_w == 9.0
    assert m.apply(MinerCommand(cfg.name, True, 20.0)) == 0  # no start: it was running
    m.advance(60.0)
    assert m.power_w == pytest.approx(20.0)
    assert m.apply(MinerCommand(cfg.name, False, 0.0)) == 0
    e, th = m.advance(60.0)
    assert m.is_on and m.power_w == pytest.approx(9.0)
    ramp_s = 11.0 / cfg.ramp_w_per_s
    assert e == pytest.approx((20 + 9) / 2 * ramp_s + 9 * (60 - ramp_s))
    assert th > 0  # still hashing at its minimum
    assert m.reading(60.0).can_pause is False and m.reading(60.0).running
    # Each stop after a run counts once, however long it is repeated.
    m.apply(MinerCommand(cfg.name, False, 0.0))
    m.advance(600.0)
    assert m.power_w == 9.0 and m.stops_held_at_min == 1
    m.apply(MinerCommand(cfg.name, True, 15.0))
    m.apply(MinerCommand(cfg.name, False, 0.0))
    assert m.stops_held_at_min == 2


def test_a_pausable_miner_still_stops_to_zero() -> None:
    m = MinerModel(_bitaxe("braiins-os"))
    assert m.apply(MinerCommand("bitaxe-1", True, 20.0)) == 1
    m.advance(120.0)
    m.apply(MinerCommand("bitaxe-1", False, 0.0))
    m.advance(60.0)
    assert m.power_w == 0.0 and not m.is_on and m.stops_held_at_min == 0


def test_no_power_is_off_even_for_a_bitaxe() -> None:
    """A contactor that opens (the HIL site's tank relay) cuts any board's power."""
    m = MinerModel(_bitaxe(), running=False)
    assert m.phase == "off" and m.power_w == 0.0
    assert m.apply(MinerCommand("bitaxe-1", True, 15.0)) == 1  # power back: it boots


def test_hil_emulator_of_a_bitaxe_runs_even_when_asked_to_start_paused() -> None:
    em = EmulatedMiner(_bitaxe(), clock=lambda: 0.0, start_running=False)
    assert not em.paused and em.model.phase == "running" and em.model.power_w == 9.0


def test_sim_switches_no_bitaxe_off_and_counts_the_stops() -> None:
    """Two sunny mornings broken by a dark afternoon and night. The threshold rule, which
    does not know which miners can pause, tells the Bitaxes to stop: the plant holds them
    at their minimum and counts it. Hearth reads `can_pause = False` and holds them itself.
    Either way none draws less than its minimum, and none ever starts (they were running
    when powered); the S9 can pause, and does."""
    cfg = simkit.site(battery=None)
    day = np.concatenate([np.full(900, 3000.0), np.zeros(900)])
    tr = simkit.trace(np.tile(day, 2), 300.0, step_s=2.0, heat_demand_w=1500.0)
    for policy, told_to_stop in (("threshold", True), ("hearth", False)):
        r = simulate(cfg, tr, policy, progress=False)
        s = summarize(r)
        for name in ("bitaxe-1", "bitaxe-2"):
            assert np.all(r.miner_energy_j[name] >= 9.0 * 2.0 - 1e-9), policy
            assert s["miner_starts"][name] == 0, policy
            assert (s["stops_held_at_min"][name] >= 1) == told_to_stop, policy
        assert set(s["stops_held_at_min"]) == {"bitaxe-1", "bitaxe-2"}
        assert s["miner_starts"]["s9"] >= 2, policy


def test_plant_readings_tell_the_controller_which_miners_cannot_pause() -> None:
    meas = Plant(simkit.site()).measure(0.0, 0.0, 300.0)
    assert {n: r.can_pause for n, r in meas.miners.items()} == {
        "s9": True, "bitaxe-1": False, "bitaxe-2": False}
