"""Plant model physics: tank, battery, miners, and the site balance."""

from __future__ import annotations

import math

import pytest
import simkit

from controller.config import parse_site
from controller.config.models import BatterySection, MinerConfig, TankSection
from controller.control.types import Commands, MinerCommand
from controller.sim.plant import Plant
from controller.sim.plant.battery import BatteryModel
from controller.sim.plant.miners import MinerModel
from controller.sim.plant.tank import TankModel


def _tank(**kw: float) -> TankModel:
    base = {"volume_l": 500, "target_c": 55, "min_c": 40, "max_c": 70,
            "heat_loss_w_per_k": 2.5, "ambient_c": 20, "initial_c": 50}
    base.update(kw)
    return TankModel(TankSection.model_validate(base))


def test_tank_heats_by_energy_over_heat_capacity() -> None:
    t = _tank(heat_loss_w_per_k=0)
    t.advance(heat_in_w=2093.0, demand_w=0, dt_s=1000)  # 2.093 MJ into 500 L * 4186 J/kgK
    assert t.temp_c == pytest.approx(51.0)


def test_tank_losses_decay_exponentially_any_step() -> None:
    a, b = _tank(), _tank()
    a.advance(0, 0, 36000)
    for _ in range(3600):
        b.advance(0, 0, 10)
    tau = 500 * 4186 / 2.5
    expected = 20 + 30 * math.exp(-36000 / tau)
    assert a.temp_c == pytest.approx(expected, abs=1e-9)
    assert b.temp_c == pytest.approx(expected, abs=1e-9)


def test_tank_below_min_hands_demand_to_backup() -> None:
    t = _tank(initial_c=40.2, heat_loss_w_per_k=0)
    delivered, backup = t.advance(heat_in_w=0, demand_w=3000, dt_s=3600)
    # It can only give what takes it from 40.2 to 40.0 °C.
    assert delivered == pytest.approx(0.2 * 500 * 4186 / 3600, rel=1e-6)
    assert delivered + backup == pytest.approx(3000)
    assert t.temp_c == pytest.approx(40.0)
    delivered, backup = t.advance(0, 3000, 60)
    assert (delivered, backup) == (pytest.approx(0.0, abs=1e-6), pytest.approx(3000))


def _battery(**kw: float) -> BatteryModel:
    base = {"capacity_kwh": 10, "max_charge_w": 5000, "max_discharge_w": 4000,
            "round_trip_efficiency": 0.81, "min_soc_pct": 10, "initial_soc_pct": 50,
            "reserve_soc_pct": 20, "priority_soc_pct": 80}
    base.update(kw)
    return BatteryModel(BatterySection.model_validate(base))


def test_battery_limits_and_losses() -> None:
    b = _battery()
    assert b.response_w(8000, 60) == 5000
    assert b.response_w(-8000, 60) == -4000
    b.advance(1000, 3600)  # 1 kWh in at √0.81 = 0.9 -> 0.9 kWh stored
    assert b.soc_pct == pytest.approx(59.0)
    b.advance(-900, 3600)  # 0.9 kWh out needs 1 kWh stored
    assert b.soc_pct == pytest.approx(49.0)


def test_battery_stops_at_its_soc_bounds() -> None:
    b = _battery(initial_soc_pct=10.5)
    p = b.response_w(-4000, 3600)
    # 0.5 % of 10 kWh = 50 Wh stored, 45 Wh deliverable over the hour.
    assert p == pytest.approx(-45.0)
    b.advance(p, 3600)
    assert b.soc_pct == pytest.approx(10.0)
    assert b.response_w(-100, 60) == 0.0


def _miner(**kw: object) -> MinerModel:
    base: dict[str, object] = {
        "name": "s9", "kind": "t", "actuation": "power_target", "min_power_w": 600,
        "max_power_w": 1400, "idle_power_w": 40, "restart_s": 90, "stop_s": 4,
        "ramp_w_per_s": 10, "efficiency": [{"power_w": 600, "j_per_th": 75},
                                           {"power_w": 1400, "j_per_th": 100}],
    }
    base.update(kw)
    return MinerModel(MinerConfig.model_validate(base))


def test_miner_boots_then_ramps_then_stops() -> None:
    m = _miner()
    assert m.apply(MinerCommand("s9", True, 1000)) == 1
    e, th = m.advance(90)
    assert (e, th) == (pytest.approx(40 * 90), 0.0)  # booting: idle power, no hashes
    e, th = m.advance(96)  # ramps 40 -> 1000 W at 10 W/s
    assert m.power_w == pytest.approx(1000)
    assert e == pytest.approx((40 + 1000) / 2 * 96)
    e, th = m.advance(10)
    assert th == pytest.approx(1000 / m.cfg.j_per_th_at(1000) * 10)
    assert m.apply(MinerCommand("s9", False, 0)) == 0
    e, _ = m.advance(10)
    assert e == pytest.approx(1000 * 4 / 2)  # linear stop over stop_s
    assert not m.is_on and m.power_w == 0


def test_miner_clamps_to_range_and_profiles() -> None:
    m = _miner()
    m.apply(MinerCommand("s9", True, 5000))
    assert m.target_w == 1400
    p = _miner(actuation="profiles", profiles_w=[600, 900, 1400])
    p.apply(MinerCommand("s9", True, 1300))
    assert p.target_w == 900


def test_efficiency_curve_interpolates() -> None:
    m = _miner().cfg
    assert m.j_per_th_at(1000) == pytest.approx(87.5)
    assert m.hashrate_ths_at(600) == pytest.approx(8.0)
    assert m.j_per_th_at(100) == 75 and m.j_per_th_at(5000) == 100


def test_site_balances_and_curtails_at_export_limit() -> None:
    d = simkit.site_dict()
    d["site"]["grid_export_limit_w"] = 3000
    del d["battery"]
    cfg = parse_site(d)
    p = Plant(cfg)
    run = Commands((MinerCommand("s9", True, 1400),), 1400, "grid", "grid")
    f = p.step(run, 60, pv_w=8000, load_w=500, heat_demand_w=0)
    assert f.curtailed_w == pytest.approx(8000 - 500 - 3000 - f.miner_w)
    assert f.pv_w + f.grid_w == pytest.approx(f.load_w + f.miner_w + f.battery_w)
    assert f.grid_w == pytest.approx(-3000)
    meas = p.measure(60, 8000, 500)
    assert meas.grid_power_w is not None and meas.grid_power_w.value == pytest.approx(-3000)
    assert meas.battery_power_w is None and meas.soc_pct is None
