"""Driver-specific behaviour: settings validation, AxeOS curve and flash-wear rate limit,
Braiins constraints, relay boot modelling and minimum on/off times, read-only telemetry,
and the control core consuming measured (not commanded) power from a driver."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from miner_harness import (
    MINERS,
    TEST_TIMEOUT_S,
    Mosquitto,
    Rig,
    miner_entry,
    rig,
    site,
    site_raw,
    wait_for,
)

from controller.config.models import MinerConfig, SiteConfig
from controller.control.allocator import Allocator, Budgets
from controller.control.types import MinerCommand
from controller.errors import InputError
from controller.miners.axeos import CurvePoint, PowerCurve
from controller.miners.base import Control, State
from controller.miners.cgminer import CgminerDriver
from controller.miners.factory import build_drivers, validate_drivers
from controller.miners.whatsminer import make_token
from hil.miners.cgminer import CgminerEmulator
from hil.miners.core import EmulatedMiner
from hil.miners.shelly import ShellyEmulator

# -- settings validation --------------------------------------------------------------------


def _problems(kind: str, driver: dict[str, object], **over: object) -> list[str]:
    # The driver tables are part of the site validation (issue 17); what needs the run
    # environment (an empty table, password_env) is left to validate_drivers.
    with pytest.raises(InputError) as exc:
        cfg = site([miner_entry("ok", "continuous", {"api": "braiins-os", "host": "h"}),
                    miner_entry("bad", kind, driver, **over)])
        validate_drivers(cfg)
    return [str(p) for p in exc.value.problems]


def test_settings_errors_name_the_field_and_reason() -> None:
    assert _problems("continuous", {"api": "braiins-os", "host": "h", "port": "eighty"}) == [
        "miners[1].driver.port: Input should be a valid integer"]  # strict (issue 17)
    assert _problems("continuous", {"api": "braiins-os", "host": "h", "prot": 80}) == [
        "miners[1].driver.prot: unknown key (typo?)"]
    assert _problems("continuous", {"api": "axeos"}) == [
        "miners[1].driver.host: required key is missing"]
    (p,) = _problems("continuous", {"api": "antminer", "host": "h"})
    assert p.startswith("miners[1].driver.api: ") and "braiins-os" in p
    assert _problems("continuous", {}) == [
        "miners[1].driver: is empty: needs at least api and host"]


def test_driver_must_fit_the_miners_actuation() -> None:
    (p,) = _problems("continuous", {"api": "luxos", "host": "h"})
    assert p == ("miners[1].driver.api: driver 'luxos' is stepped control: it can serve "
                 "actuation 'profiles', not 'power_target'")
    (p,) = _problems("relay", {"api": "braiins-os", "host": "h"})
    assert "not 'relay'" in p
    (p,) = _problems("relay", {"api": "cgminer", "host": "h"})
    assert "nothing (read-only telemetry)" in p
    (p,) = _problems("stepped", {"api": "avalon", "host": "h"},
                     profiles_w=[1100, 1200, 1300, 1500])
    assert "three work modes" in p


def test_axeos_curve_must_cover_the_configured_range() -> None:
    (p,) = _problems("bitaxe", {"api": "axeos", "host": "h"}, max_power_w=30,
                     efficiency=[{"power_w": 9, "j_per_th": 15}, {"power_w": 30, "j_per_th": 20}])
    assert p.startswith("miners[1].driver.curve: curve covers 9..22 W")
    (p,) = _problems("bitaxe", {"api": "axeos", "host": "h", "curve": "no-such-board"})
    assert "cannot load curve 'no-such-board'" in p


def test_password_env_is_resolved_and_a_missing_one_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_TEST_PW", raising=False)
    (p,) = _problems("continuous", {"api": "braiins-os", "host": "h",
                                    "password_env": "HEARTH_TEST_PW"})
    assert p == "miners[1].driver.password_env: environment variable HEARTH_TEST_PW is not set"
    monkeypatch.setenv("HEARTH_TEST_PW", "s3cret")
    cfg = site([miner_entry("a", "continuous", {"api": "braiins-os", "host": "h",
                                                "password_env": "HEARTH_TEST_PW"})])
    drv = build_drivers(cfg)["a"]
    assert drv.caps.control is Control.CONTINUOUS
    assert drv.password == "s3cret"


def test_every_problem_is_reported_at_once(caplog: pytest.LogCaptureFixture) -> None:
    miners = [miner_entry("a", "continuous", {"api": "luxos", "host": "h"}),
              miner_entry("b", "relay", {"api": "shelly", "host": "h", "switch_id": -1})]
    with pytest.raises(InputError) as exc:  # the site validation (config check, MQTT, HMI)
        site(miners)
    wheres = [p.where for p in exc.value.problems]
    assert wheres == ["miners[0].driver.api", "miners[1].driver.switch_id"]
    # and the service's own check, for a config that was never validated as a whole
    cfg = SiteConfig.model_validate(site_raw(miners))
    with caplog.at_level(logging.WARNING), pytest.raises(InputError) as exc:
        build_drivers(cfg)
    assert [p.where for p in exc.value.problems] == wheres
    assert "refused driver settings" in caplog.text


# -- AxeOS ----------------------------------------------------------------------------------


def test_axeos_curve_maps_watts_to_frequency_and_safe_voltage() -> None:
    c = PowerCurve.load("bitaxe-gamma")
    assert c.settings_for(9) == (400, 1000)
    assert c.settings_for(22) == (625, 1200)
    assert c.settings_for(13.5) == (508, 1100)  # halfway 490..525 MHz, the upper voltage
    assert c.settings_for(100) == (625, 1200)  # never beyond the curve
    assert c.power_at(508) == pytest.approx(13.54, abs=0.05)
    with pytest.raises(ValueError, match="increase"):
        PowerCurve([CurvePoint(500, 1100, 15), CurvePoint(450, 1150, 18)])


async def test_axeos_writes_are_rate_limited_for_flash_wear() -> None:
    async with rig("axeos") as rg:
        rg.driver.caps = replace(rg.driver.caps, min_write_interval_s=60)
        first = await rg.driver.set_power(15)
        assert first.action == "sent"
        second = await rg.driver.set_power(20)
        assert second.action == "deferred" and "flash wear" in second.reason
        assert rg.miner.power_writes == [pytest.approx(15.0, abs=0.1)]
        info_freq = rg.emulator.frequency
        assert info_freq == 525


async def test_axeos_has_no_pause_and_says_so() -> None:
    async with rig("axeos") as rg:
        assert not rg.driver.caps.can_pause
        res = await rg.driver.apply(MinerCommand("m1", False, 0.0))
        assert res.action == "unsupported" and "no pause" in res.reason


# -- Braiins ---------------------------------------------------------------------------------


async def test_braiins_learns_the_firmware_range_and_changes_power_without_restart() -> None:
    async with rig("braiins-os", fw_min_w=700, fw_max_w=1200) as rg:
        res = await rg.driver.set_power(650)
        assert res.action == "clamped" and res.sent_w == 700
        assert (rg.driver.caps.min_power_w, rg.driver.caps.max_power_w) == (700, 1200)
        assert rg.miner.phase == "running"  # no stop/start, no reboot on a power change
        assert [k for k, _ in rg.miner.writes] == ["target"]


def test_whatsminer_token_is_the_documented_scheme() -> None:
    # base64(sha256("set.miner.service" + "pw" + "salt" + "1700000000"))[:8]
    import base64
    import hashlib
    d = hashlib.sha256(b"set.miner.servicepwsalt1700000000").digest()
    assert make_token("set.miner.service", "pw", "salt", 1700000000) == \
        base64.b64encode(d).decode()[:8]


# -- relays -----------------------------------------------------------------------------------


async def test_relay_models_boot_time_and_keeps_min_off_time() -> None:
    async with rig("shelly", min_off_s=30, min_on_s=30, restart_s=0.8) as rg:
        assert (await rg.driver.set_power(0)).action == "sent"
        res = await rg.driver.set_power(1300)
        assert res.action == "deferred" and "min_off_s" in res.reason
        assert rg.miner.paused  # still off: nothing was sent
        assert [k for k, _ in rg.miner.writes] == ["pause"]


async def test_relay_reports_booting_then_running() -> None:
    async with rig("shelly", restart_s=0.8) as rg:
        await rg.driver.set_power(0)
        await wait_for(lambda: rg.miner.power_w == 0)
        assert (await rg.driver.set_power(1300)).action == "sent"
        st = await rg.driver.read()
        assert st.state is State.BOOTING and st.hashrate_ths == 0
        await wait_for(lambda: _running(rg))
        st = rg.driver.status
        assert st.power_w == pytest.approx(1300, abs=1) and st.hashrate_ths > 0


async def _running(rg: Rig) -> bool:
    st = await rg.driver.read()
    return st.state is State.RUNNING and abs(st.power_w - 1300) < 1


async def test_relay_off_is_obeyed_even_inside_min_on_time(
        caplog: pytest.LogCaptureFixture) -> None:
    async with rig("shelly", min_on_s=600) as rg:
        await rg.driver.read()
        with caplog.at_level(logging.WARNING):
            res = await rg.driver.apply(MinerCommand("m1", False, 0.0))
        assert res.action in ("sent", "unchanged")
        assert rg.miner.paused


async def test_shelly_with_cgminer_telemetry_reads_real_hash_rate() -> None:
    cfg: MinerConfig = site([miner_entry("s9", "relay", {"api": "shelly", "host": "x"})]
                            ).miners[0]
    miner = EmulatedMiner(cfg)
    async with ShellyEmulator(miner) as shelly, CgminerEmulator(miner) as cg:
        drv = build_drivers(site([miner_entry("s9", "relay", {
            "api": "shelly", "host": "127.0.0.1", "port": shelly.port,
            "timeout_s": TEST_TIMEOUT_S,
            "telemetry": {"host": "127.0.0.1", "port": cg.port}})]))["s9"]
        try:
            st = await drv.read()
            assert st.state is State.RUNNING
            assert st.hashrate_ths == pytest.approx(miner.hashrate_ths, rel=0.01)
            assert st.temp_c is not None and st.temp_c > 30
        finally:
            await drv.close()


async def test_cgminer_is_read_only_and_estimates_power() -> None:
    # The factory refuses it as an actuator (see above); built directly for monitoring.
    cfg = site([miner_entry("s9", "relay", {"api": "shelly", "host": "x"})]).miners[0]
    miner = EmulatedMiner(cfg)
    async with CgminerEmulator(miner) as cg:
        drv = CgminerDriver(cfg, host="127.0.0.1", port=cg.port, timeout_s=TEST_TIMEOUT_S)
        st = await drv.read()
        assert st.state is State.RUNNING and st.power_estimated
        assert st.hashrate_ths == pytest.approx(miner.hashrate_ths, rel=0.01)
        assert st.power_w == pytest.approx(miner.power_w, rel=0.15)
        res = await drv.set_power(1000)
        assert res.action == "unsupported" and "read-only" in res.reason
        assert (await drv.pause()).action == "unsupported"
        assert miner.writes == []


async def test_tasmota_plug_that_does_not_answer_is_unavailable(tmp_path: Path) -> None:
    b = Mosquitto(tmp_path)
    try:
        async with rig("tasmota", b.port) as rg:
            assert (await rg.driver.read()).state is State.RUNNING
            await rg.emulator.stop()  # broker still up, plug gone
            st = await rg.driver.read()
            assert st.state is State.UNAVAILABLE and "no answer" in st.detail
            await rg.emulator.start()
    finally:
        b.stop()


# -- the control core uses measured power ----------------------------------------------------


async def test_allocator_budgets_on_measured_power_from_the_driver() -> None:
    # A miner whose firmware holds less than commanded: the readback (not the command) is
    # what the allocator's shedding sees, so a hard cap is met with the power really drawn.
    async with rig("braiins-os", fw_max_w=1000) as rg:
        await rg.driver.set_power(1400)  # clamped to the firmware's 1000 W
        await wait_for(lambda: abs(rg.miner.power_w - 1000) < 1)
        reading = (await rg.driver.read()).reading()
        assert reading is not None and reading.power_w == pytest.approx(1000, abs=1)
        cfg = rg.cfg
        alloc = Allocator([cfg], on_hysteresis_w=0, on_delay_s=0, off_delay_s=0)
        b = Budgets(available_w=1400, target_w=1400, tank_target_w=1e9, hard_cap_w=1200,
                    hard_tank_cap_w=1e9)
        out = alloc.allocate(b, {cfg.name: reading.power_w}, now=1000.0, deadline_s=1.0)
        assert out.forced_off == ()  # 1000 W measured fits under the 1200 W cap
        cmd = out.commands[0]
        res = await rg.driver.apply(cmd)
        assert res.ok and all(w <= 1000 for w in rg.miner.power_writes)


def test_capabilities_follow_the_site_file() -> None:
    cfg = site([miner_entry("a", "stepped", {"api": "luxos", "host": "h"})])
    caps = build_drivers(cfg)["a"].caps
    assert caps.control is Control.STEPPED and caps.levels_w == (1100, 1300, 1500)
    m = MINERS["stepped"]
    assert caps.settle_s == pytest.approx((m["max_power_w"] - m["min_power_w"])
                                          / m["ramp_w_per_s"] + 5.0)
