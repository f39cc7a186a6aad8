"""Pulse counting, flow, thermal power and the kWh counter kept across reboots."""

from fwharness import Rig, config, near
from hsat.heat import CP_J_PER_KG_K, HeatMeter, water_density_kg_per_l


def case_water_density_reference_points():
    # Reference densities of air-free water (kg/m3): 4 °C 999.97, 20 °C 998.21,
    # 50 °C 988.04, 80 °C 971.80.
    assert near(water_density_kg_per_l(4.0) * 1000, 999.97, 0.02)
    assert near(water_density_kg_per_l(20.0) * 1000, 998.21, 0.02)
    assert near(water_density_kg_per_l(50.0) * 1000, 988.04, 0.1)
    assert near(water_density_kg_per_l(80.0) * 1000, 971.80, 0.3)


def case_pulses_give_flow_power_and_energy():
    rig = Rig(temps={"supply": 60.0, "return": 50.0})
    rig.run(2000)
    rig.pulses(11, 6000)  # 1 L per pulse every 6 s: 10 L/min
    heat = rig.sat.heat
    assert near(heat.flow_l_per_min, 10.0, 0.02)
    rho = water_density_kg_per_l(50.0)
    expected_w = 10.0 / 60.0 * rho * CP_J_PER_KG_K * 10.0
    assert near(heat.power_w, expected_w, expected_w * 0.005)
    # 11 pulses = 11 L, every one heated by 10 K.
    assert heat.volume_ml == 11000
    expected_j = 11 * rho * CP_J_PER_KG_K * 10.0
    assert near(heat.energy_j, expected_j, 2)
    rig.run(1100)  # the next telemetry message
    tele = rig.telemetry()["heat"]
    assert near(tele["power_w"], expected_w, expected_w * 0.005)
    assert near(tele["energy_kwh"], expected_j / 3.6e6, 0.0001)
    assert tele["volume_l"] == 11.0


def case_litres_per_pulse_is_configurable():
    rig = Rig(cfg=config(litres_per_pulse=0.25), temps={"supply": 45.0, "return": 35.0})
    rig.run(2000)
    rig.pulses(9, 1500)  # 0.25 L every 1.5 s = 10 L/min
    assert near(rig.sat.heat.flow_l_per_min, 10.0, 0.02)
    assert rig.sat.heat.volume_ml == 2250


def case_flow_decays_to_zero_without_pulses():
    rig = Rig(cfg=config(flow_timeout_s=30.0), temps={"supply": 60.0, "return": 50.0})
    rig.run(2000)
    rig.pulses(5, 6000)
    assert near(rig.sat.heat.flow_l_per_min, 10.0, 0.02)
    rig.run(12000)  # no pulse for 12 s: flow can be at most 1 L / 12 s = 5 L/min
    assert rig.sat.heat.flow_l_per_min <= 5.0 + 0.01
    rig.run(20000)  # past flow_timeout_s
    assert rig.sat.heat.flow_l_per_min == 0.0 and rig.sat.heat.power_w == 0.0


def case_no_heat_counted_without_temperatures():
    rig = Rig(temps={"supply": 60.0, "return": 50.0})
    rig.run(2000)
    rig.sensor("supply").mode = "absent"
    rig.run(5000)
    rig.pulses(4, 3000)
    heat = rig.sat.heat
    assert heat.energy_j == 0 and heat.power_w is None
    assert heat.volume_ml == 4000 and heat.unmetered_ml == 4000


def case_reverse_delta_t_adds_no_energy():
    m = HeatMeter(1.0)
    m.update(0, 0, None, 40.0, 50.0)
    m.update(1000, 3, 900, 40.0, 50.0)
    assert m.energy_j == 0 and m.volume_ml == 3000


def case_debounce_ignores_contact_bounce():
    rig = Rig(temps={"supply": 60.0, "return": 50.0})
    rig.run(1000)
    rig.flow_pin.fire()
    rig.flow_pin.fire()  # same millisecond: a bounce of a reed contact
    rig.run(100)
    rig.flow_pin.fire()
    rig.run(100)
    assert rig.sat.pulses.count == 2


def case_energy_counter_survives_reboot():
    rig = Rig(cfg=config(persist_period_s=10.0), temps={"supply": 70.0, "return": 40.0})
    rig.run(2000)
    rig.pulses(6, 3000)
    rig.run(11000)  # one persist period passes
    saved = rig.sat.heat.energy_j
    assert saved > 0
    root = rig.root
    # Power cut, reboot: same flash directory, the counters go on from where they were.
    again = Rig(cfg=config(persist_period_s=10.0), root=root,
                temps={"supply": 70.0, "return": 40.0})
    assert again.sat.heat.energy_j == saved
    assert again.sat.heat.volume_ml == 6000
    assert again.sat.boot == 2
    again.run(2000)
    again.pulses(3, 3000)
    assert again.sat.heat.energy_j > saved


def case_store_survives_a_torn_write():
    rig = Rig()
    store = rig.sat.store
    store.save("heat", {"energy_j": 100, "volume_ml": 1})
    store.save("heat", {"energy_j": 200, "volume_ml": 2})
    newest = "{}/heat.{}".format(rig.root, store._slot["heat"])
    with open(newest, "rb") as f:
        blob = f.read()
    with open(newest, "wb") as f:
        f.write(blob[: len(blob) // 2])  # power cut in the middle of the write
    store2 = type(store)(rig.root, rig.log)
    assert store2.load("heat") == {"energy_j": 100, "volume_ml": 1}
    assert rig.logged("damaged slot")
