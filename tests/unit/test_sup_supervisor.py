"""The supervisor's decisions through the real controller against the plant: the plan and
DR floors (under every hard cap), the price rule with its margin and hold, exporting
versus mining, price spikes, negative export prices, and heating mode's price cap."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simkit

from controller.config.models import Mode
from controller.control.controller import Controller
from controller.control.overrides import NO_OVERRIDES, Overrides
from controller.control.supervisor import Supervisor, Worth
from controller.control.types import Commands, Measurements, Reading
from controller.errors import InputError
from controller.sim.plant import Plant


def _room_miners() -> list[dict[str, Any]]:
    """The house's miners heating the room instead of the tank: BTC value only."""
    miners = simkit.site_dict()["miners"]
    for m in miners:
        m["heats_tank"] = False
    return miners


def _run(o: Overrides = NO_OVERRIDES, seconds: int = 600, pv: float = 0.0, load: float = 400.0,
         imp: float = 0.30, exp: float = 0.05, **site: Any) -> tuple[Commands, Plant, list[str]]:
    site = {"battery": None, "tank": None, "miners": _room_miners(), **site}
    cfg = simkit.site(**site)
    plant, ctrl = Plant(cfg), Controller(cfg)
    cmds = None
    limiters = []
    for t in range(seconds):
        now = float(t)
        cmds = ctrl.step(plant.measure(now, pv, load, imp, exp), now, o)
        plant.step(cmds, 1.0, pv, load, 0.0)
        limiters.append(cmds.limiter)
    assert cmds is not None
    return cmds, plant, limiters


# The Bitaxes' AxeOS cannot pause: "nothing runs" leaves them at their minimum (18 W).
HELD_W = simkit.held_w(simkit.site())


def _drawn(plant: Plant) -> float:
    return sum(m.power_w for m in plant.miners)


# -- floors: the day-ahead plan and DR absorb (the plan helper relies on these) ------------

def test_plan_floor_buys_what_the_price_rule_would_not() -> None:
    cmds, plant, lim = _run()
    assert cmds.total_target_w == HELD_W  # 0.30 per kWh: nobody is worth buying for
    cmds, plant, lim = _run(Overrides(plan_min_w=800.0))
    assert abs(cmds.total_target_w - 800.0) < 30
    assert lim[-1] == "plan"
    assert plant.balance_now(0.0, 400.0, _drawn(plant))[2] > 1100  # really bought


def test_plan_floor_replaces_the_price_rule() -> None:
    cmds, _, _ = _run(imp=-0.05)
    assert cmds.total_target_w > 1400  # negative price: everything runs
    cmds, _, lim = _run(Overrides(plan_min_w=0.0), imp=-0.05)
    assert cmds.total_target_w == HELD_W  # the plan said nothing is worth it
    assert lim[-1] == "grid"


def test_floors_stay_under_the_import_limit_and_the_dr_cap() -> None:
    site = {"site": {**simkit.site_dict()["site"], "grid_import_limit_w": 1500}}
    # Miners' import limit: 1500 − 300 headroom − 400 house = 800 W.
    cmds, _, lim = _run(Overrides(plan_min_w=1400.0), **site)
    assert cmds.total_target_w <= 800.0 + 1
    assert lim[-1] == "import_limit"
    cmds, _, lim = _run(Overrides(dr_absorb_w=1000.0, dr_cap_w=300.0))
    assert cmds.total_target_w <= 300.0
    assert lim[-1] == "dr_cap"


def test_dr_absorb_raises_the_floor_and_beats_a_price_spike() -> None:
    cmds, _, lim = _run(Overrides(dr_absorb_w=700.0))
    assert abs(cmds.total_target_w - 700.0) < 30
    assert lim[-1] == "dr_absorb"
    ctl = {**simkit.site_dict()["control"], "price_spike_per_kwh": 0.25}
    cmds, _, lim = _run(Overrides(dr_absorb_w=700.0), control=ctl)
    assert abs(cmds.total_target_w - 700.0) < 30  # a paid request, not a price rule
    cmds, _, lim = _run(Overrides(plan_min_w=700.0), control=ctl)
    assert cmds.total_target_w == HELD_W and lim[-1] == "price_spike"


# -- export versus mining --------------------------------------------------------------------

def test_exporting_beats_a_miner_worth_less_than_the_export_price() -> None:
    # The S9 earns 0.026 per kWh in BTC, the Bitaxes 0.13: at 0.10 export, the S9 sheds.
    ctl = {**simkit.site_dict()["control"], "surplus_policy": "value"}
    off, _, _ = _run(pv=3000.0, exp=0.10)
    assert off.total_target_w > 1400  # by default the miners eat the surplus regardless
    cheap, _, _ = _run(pv=3000.0, exp=0.02, control=ctl)
    assert cheap.total_target_w > 1400
    dear, _, lim = _run(pv=3000.0, exp=0.10, control=ctl)
    s9 = dear.by_name()["s9"]
    assert not s9.run
    assert dear.by_name()["bitaxe-1"].run and dear.by_name()["bitaxe-2"].run
    assert "export_price" in lim
    # The S9 says why, with the two numbers it was compared on (BTC per kWh, export).
    assert s9.reason == "export_pays"
    assert s9.reason_price_per_kwh == 0.10
    assert s9.reason_worth_per_kwh is not None and 0.02 < s9.reason_worth_per_kwh < 0.03
    from hmi.state import reason_words

    assert reason_words(s9.reason, None, None, s9.reason_worth_per_kwh,
                        s9.reason_price_per_kwh) == \
        f"Off: mining pays {s9.reason_worth_per_kwh * 100:.1f} ct/kWh, export pays 10.0: " \
        "exporting."


def test_the_old_export_rule_key_still_reads() -> None:
    d = simkit.site_dict()
    d["control"]["shed_when_export_pays"] = True
    assert simkit.parse_site(d).control.surplus_policy == "value"
    d["control"]["surplus_policy"] = "always_mine"
    with pytest.raises(InputError, match="contradicts"):
        simkit.parse_site(d)
    del d["control"]["surplus_policy"]
    d["control"]["shed_when_export_pays"] = 1  # 1 is not true
    with pytest.raises(InputError, match="shed_when_export_pays: must be true or false"):
        simkit.parse_site(d)


def _s9_switches(price_hysteresis: float, hold_s: float) -> int:
    """Export price wobbling around the S9's value (0.026 per kWh) every minute for two
    hours of ample surplus: how often its run decision flips."""
    ctl = {**simkit.site_dict()["control"], "surplus_policy": "value",
           "price_hysteresis_per_kwh": price_hysteresis,
           "price_decision_min_hold_s": hold_s, "on_delay_s": 0.0, "off_delay_s": 0.0}
    cfg = simkit.site(battery=None, tank=None, miners=_room_miners(), control=ctl)
    plant, ctrl = Plant(cfg), Controller(cfg)
    flips, last = 0, None
    for t in range(7200):
        exp = 0.021 if (t // 60) % 2 else 0.031
        now = float(t)
        cmds = ctrl.step(plant.measure(now, 3000.0, 400.0, 0.30, exp), now)
        plant.step(cmds, 1.0, 3000.0, 400.0, 0.0)
        run = cmds.by_name()["s9"].run
        flips += last is not None and run != last
        last = run
    return flips


def test_value_policy_does_not_flap_around_the_export_price() -> None:
    assert _s9_switches(0.0, 0.0) >= 10  # no margin, no hold: it follows every wobble
    assert _s9_switches(0.01, 900.0) <= 1  # the defaults: one decision, kept


def test_surplus_the_export_limit_would_curtail_is_still_mined() -> None:
    site = {"site": {**simkit.site_dict()["site"], "grid_export_limit_w": 1000},
            "control": {**simkit.site_dict()["control"], "surplus_policy": "value"}}
    cfg = simkit.site(battery=None, tank=None, miners=_room_miners(), **site)
    plant, ctrl = Plant(cfg), Controller(cfg)
    pv, load = 2200.0, 400.0  # 1800 W surplus, 1000 W of it exportable
    lim = []
    for t in range(1200):
        exp = 0.0 if t < 400 else 0.10  # then exporting pays more than the S9 earns
        now = float(t)
        cmds = ctrl.step(plant.measure(now, pv, load, 0.30, exp), now)
        plant.step(cmds, 1.0, pv, load, 0.0)
        lim.append(cmds.limiter)
        if t == 399:
            assert cmds.total_target_w > 1400  # everything mined while export is worthless
    assert cmds.by_name()["s9"].run  # it keeps what the export limit would curtail...
    assert 700 < cmds.total_target_w < 950  # ... and only that
    assert "export_price" in lim[400:]
    assert -plant.balance_now(pv, load, _drawn(plant))[2] <= 1000.0 + 1e-6


def test_negative_export_price_eats_the_export_margin() -> None:
    _, plant, _ = _run(pv=1600.0, load=500.0, exp=0.05)
    normal = plant.balance_now(1600.0, 500.0, _drawn(plant))[2]
    _, plant, _ = _run(pv=1600.0, load=500.0, exp=-0.02)
    negative = plant.balance_now(1600.0, 500.0, _drawn(plant))[2]
    assert normal < -30  # the 50 W export margin
    assert abs(negative) < 20  # no export when exporting costs money


# -- the price rule: margin and hold ------------------------------------------------------------

def test_price_margin_and_hold_keep_a_decision() -> None:
    cfg = simkit.site(battery=None, tank=None, miners=_room_miners())
    sup = Supervisor(cfg, Worth([(22.0, 0.13, 0.13), (22.0, 0.13, 0.13),
                                 (1400.0, 0.026, 0.026)]))
    h = cfg.control.price_hysteresis_per_kwh
    hold = cfg.control.price_decision_min_hold_s
    assert h > 0 and hold > 0
    assert sup.buy_level_w_at(0.13 - h / 2, False, 0.0) == 0  # not with the margin
    assert sup.buy_level_w_at(0.13 - 2 * h, False, 1.0) == 44  # clearly worth it
    # Just above the value: kept (within the margin), and in any case held.
    assert sup.buy_level_w_at(0.13 + h / 2, False, 2.0) == 44
    assert sup.buy_level_w_at(0.20, False, hold / 2) == 44  # held
    assert sup.buy_level_w_at(0.20, False, hold + 2.0) == 0  # hold over: dropped
    assert sup.buy_level_w_at(-0.01, False, hold + 3.0) == 0  # held again...
    assert sup.buy_level_w_at(-0.01, False, 2 * hold + 3.0) == 1444


# -- heating mode's price cap -------------------------------------------------------------------

def _heating(imp: float, **control: Any) -> tuple[Commands, list[str]]:
    d = simkit.site_dict()
    d["control"].update(mode="heating", **control)
    d["tank"]["initial_c"] = 45.0
    cfg = simkit.parse_site(d)
    del d
    plant, ctrl = Plant(cfg, island=False), Controller(cfg)
    # No battery draw into the miners at night: start it empty.
    assert plant.battery is not None
    plant.battery.soc_pct = cfg.battery.min_soc_pct if cfg.battery else 0.0
    cmds, lim = None, []
    for t in range(0, 1200, 2):
        now = float(t)
        cmds = ctrl.step(plant.measure(now, 0.0, 300.0, imp, 0.05), now)
        plant.step(cmds, 2.0, 0.0, 300.0, 1500.0)
        lim.append(cmds.limiter)
    assert cmds is not None
    return cmds, lim


def test_heating_buys_below_its_cap_only() -> None:
    # Default cap: the gas the heat displaces, 0.11 / 0.9 = 0.122 per kWh.
    below, lim = _heating(0.12)
    assert below.total_target_w > 1000
    above, lim = _heating(0.13)
    assert above.total_target_w == HELD_W
    assert lim[-1] == "heating_price_cap"
    raised, _ = _heating(0.13, heating_price_cap_per_kwh=0.20)
    assert raised.total_target_w > 1000


def test_modes_report_themselves() -> None:
    cmds, _, _ = _run(Overrides(mode=Mode.HEATING), tank=simkit.site_dict()["tank"],
                      miners=simkit.site_dict()["miners"], imp=0.05)
    assert cmds.mode == "heating"
    m = Measurements(grid_power_w=Reading(0.0, 0.0))
    assert Controller(simkit.site(battery=None, tank=None, miners=_room_miners())).step(
        m, 0.0).mode == "grid"
    assert np.isfinite(cmds.total_target_w)


def test_worth_counts_a_less_efficient_tank_miner_worth_more_with_its_heat() -> None:
    """Efficient boards that do not heat the tank must not hide an S9 that does: with the
    tank wanting heat its displaced heat makes it worth buying for (found in the HIL
    winter-night scenario, where the S9 never bought)."""
    from controller.control.supervisor import Worth

    worth = Worth([(30.0, 0.02, 0.02), (30.0, 0.02, 0.02), (1400.0, 0.015, 0.13)])
    assert worth.power_w(0.10, tank_wants_heat=True) == 1400.0
    assert worth.power_w(0.10, tank_wants_heat=False) == 0.0
    assert worth.power_w(0.018, tank_wants_heat=False) == 60.0
    assert worth.power_w(-0.01, tank_wants_heat=False) == 1460.0


def test_the_wall_page_says_why_in_plain_words() -> None:
    """The HMI only presents: the reason code and its two numbers from the core become
    one sentence on the miner's card."""
    from datetime import UTC, datetime

    from controller.runtime.ports import TickRecord
    from hmi.state import miners_of

    ctl = {**simkit.site_dict()["control"], "surplus_policy": "value"}
    cfg = simkit.site(battery=None, tank=None, miners=_room_miners(), control=ctl)
    plant, ctrl = Plant(cfg), Controller(cfg)
    for t in range(600):
        now = float(t)
        m = plant.measure(now, 3000.0, 400.0, 0.30, 0.06)
        cmds = ctrl.step(m, now)
        plant.step(cmds, 1.0, 3000.0, 400.0, 0.0)
    tick = TickRecord(datetime.now(UTC), now, m, cmds, NO_OVERRIDES, ctrl.debug, 0.0)
    s9 = next(x for x in miners_of(tick, cfg) if x.name == "s9")
    assert s9.reason == "export_pays"
    assert s9.why is not None and s9.why.startswith("Off: mining pays 2.")
    assert s9.why.endswith("ct/kWh, export pays 6.0: exporting.")
