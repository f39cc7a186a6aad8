"""Every shipped map, read from its emulator over real Modbus TCP on loopback, gives the
plant's values back with our sign (import +, charge +) and the right scale."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from modbus_testkit import VALUES, serve, tcp_device, tolerance

from controller.config import load_site
from controller.control.types import Measurements
from controller.devices.acquisition import Acquisition
from controller.devices.regmap import load_map, shipped_maps
from controller.errors import InputError
from controller.sim.plant import Plant
from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator, values_from_measurements

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("map_id", shipped_maps())
async def test_each_map_reads_back_its_emulator(map_id: str) -> None:
    emu = await serve(map_id)
    try:
        dmap = load_map(map_id)
        # Huawei's connect delay is the map's default (1 s); kept short here.
        acq = Acquisition([tcp_device("dev", map_id, emu.port or 0, connect_delay_s=0.05)])
        assert await acq.read_once() == {"dev": True}
        got = acq.pollers[0].readings
        assert set(got) == set(dmap.measures), acq.pollers[0].missing
        for qty, reading in got.items():
            assert reading.value == pytest.approx(VALUES[qty], abs=tolerance(qty)), qty
        # Our sign convention, whatever the vendor's: export is negative, charge positive.
        if "grid_power_w" in got:
            assert got["grid_power_w"].value < 0
        if "battery_power_w" in got:
            assert got["battery_power_w"].value > 0
        await acq.stop()
    finally:
        await emu.stop()


async def test_plant_values_reach_the_snapshot_with_sign_and_time() -> None:
    """The emulators driven by the plant model: a sunny hour, battery charging,
    exporting; then an evening, battery discharging, importing."""
    cfg = load_site(REPO / "hil" / "sites" / "house-10kwp.toml")
    plant = Plant(cfg)
    devices = [EmulatedDevice(100, DeviceImage("victron-gx"))]
    emu = ModbusEmulator(devices, name="gx")
    port = await emu.start_tcp()
    meter = ModbusEmulator([EmulatedDevice(1, DeviceImage("eastron-sdm630"))], name="meter")
    meter_port = await meter.start_tcp()
    clock_s = [1000.0]
    acq = Acquisition([
        tcp_device("gx", "victron-gx", port, role="hybrid",
                   provides=["pv_power_w", "battery_power_w", "soc_pct"]),
        tcp_device("meter", "eastron-sdm630", meter_port, role="grid_meter"),
    ], clock=lambda: clock_s[0])
    try:
        for pv_w, load_w in ((7000.0, 600.0), (0.0, 7000.0)):
            m = plant.measure(clock_s[0], pv_w, load_w)
            values = values_from_measurements(m)
            emu.set_values(values)
            meter.set_values(values)
            assert await acq.read_once() == {"gx": True, "meter": True}
            snap = acq.fill(Measurements(tank_temp_c=m.tank_temp_c))
            assert snap.tank_temp_c == m.tank_temp_c  # other fields are left alone
            for name in ("grid_power_w", "pv_power_w", "battery_power_w", "soc_pct"):
                want, got = getattr(m, name), getattr(snap, name)
                assert got is not None, name
                assert got.value == pytest.approx(want.value, abs=tolerance(name)), name
                assert got.at_s == clock_s[0]
            clock_s[0] += 60.0
        # Evening: the battery discharges (−) and the site imports (+).
        assert snap.battery_power_w is not None and snap.battery_power_w.value < 0
        assert snap.grid_power_w is not None and snap.grid_power_w.value > 0
    finally:
        await acq.stop()
        await emu.stop()
        await meter.stop()


async def test_not_implemented_points_are_missing_not_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A SunSpec meter without phase C (0x8000) and an SMA inverter at night (NaN)."""
    caplog.set_level(logging.INFO)
    image = DeviceImage("sunspec")
    image.set_values(VALUES)
    image.set_missing("grid_power_l3_w")
    sma = DeviceImage("sma-inverter")
    sma.set_values(VALUES)
    sma.set_missing("pv_power_w")
    emu = ModbusEmulator([EmulatedDevice(1, image), EmulatedDevice(3, sma)])
    port = await emu.start_tcp()
    acq = Acquisition([
        tcp_device("ss", "sunspec", port, role="grid_meter"),
        tcp_device("sma", "sma-inverter", port, role="pv_inverter", unit_id=3),
    ])
    try:
        assert await acq.read_once() == {"ss": True, "sma": True}
        ss, sma_p = acq.poller("ss"), acq.poller("sma")
        assert "grid_power_l3_w" not in ss.readings
        assert "not available" in ss.missing["grid_power_l3_w"]
        assert ss.readings["grid_power_l1_w"].value == pytest.approx(-411.0)
        assert "pv_power_w" not in sma_p.readings
        assert acq.fill().pv_power_w is None  # None, never 0
        assert "device sma: pv_power_w not available" in caplog.text
        # The device has it again later: it comes back.
        sma.set_values(VALUES)
        await acq.read_once()
        assert acq.fill().pv_power_w is not None
    finally:
        await acq.stop()
        await emu.stop()


async def test_two_devices_on_one_gateway_share_one_connection() -> None:
    """SMA inverter (unit 3) and Sunny Island (unit 4) behind one TCP endpoint."""
    emu = ModbusEmulator([EmulatedDevice(3, DeviceImage("sma-inverter")),
                          EmulatedDevice(4, DeviceImage("sma-sunny-island"))])
    emu.set_values(VALUES)
    port = await emu.start_tcp()
    acq = Acquisition([
        tcp_device("inv", "sma-inverter", port, role="hybrid"),
        tcp_device("si", "sma-sunny-island", port, role="battery", unit_id=4),
    ])
    try:
        for _ in range(3):
            assert await acq.read_once() == {"inv": True, "si": True}
        assert len(acq.pool.links) == 1
        assert acq.pool.links[0].connects == 1
        assert emu.client_count() == 1
        snap = acq.fill()
        assert snap.soc_pct is not None and snap.soc_pct.value == pytest.approx(63.5, abs=0.51)
        assert snap.grid_power_w is not None
        assert snap.grid_power_w.value == pytest.approx(-1234.0, abs=1)
    finally:
        await acq.stop()
        await emu.stop()


def test_two_grid_meters_are_refused() -> None:
    with pytest.raises(InputError) as info:
        Acquisition([tcp_device("a", "eastron-sdm630", 1502, role="grid_meter"),
                     tcp_device("b", "fronius-meter", 1502, role="grid_meter")],
                    source="site.toml")
    msg = info.value.render()
    assert "site.toml: devices[1].role: grid_power_w would come from several devices (a, b)" \
        in msg


def test_a_role_the_map_cannot_serve_is_refused() -> None:
    with pytest.raises(InputError, match=r"devices\[0\]\.role: map 'eastron-sdm630' measures "
                       "none of what role 'battery' needs"):
        Acquisition([tcp_device("m", "eastron-sdm630", 1502, role="battery")])
