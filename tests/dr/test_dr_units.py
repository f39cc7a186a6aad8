"""Demand response, piece by piece: MQTT payloads, the DR schedule and its hook, the
OpenADR event mapping and config, the service waking on a signal, the ledger's DR fields
and the 0003 migration."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simkit
from sqlalchemy import text

from controller.bridge.commands import CommandQueue, SetDrAbsorb, SetDrCap, parse_command
from controller.config import parse_site
from controller.config.models import SiteConfig
from controller.config.openadr import OpenAdrSection
from controller.control.overrides import NO_OVERRIDES
from controller.control.types import Commands, Measurements, MinerReading, Reading
from controller.errors import InputError
from controller.ledger.accumulate import IntervalAccumulator, Sample
from controller.ledger.db import _alembic_config, make_engine, migrate
from controller.runtime.dr import DrEvent, DrHook, DrSchedule
from controller.runtime.ledger_publisher import dr_request_of
from controller.runtime.mqtt_wiring import MqttCommands
from controller.runtime.openadr import EventMapper, Refused
from controller.runtime.ports import TickRecord
from controller.runtime.service import Service

HOUSE = simkit.site()  # S9 600..1400 W + two Bitaxes 9..22 W: capacity 1444 W


def _problems(err: InputError) -> dict[str, str]:
    return {p.where: p.reason for p in err.problems}


# -- MQTT payloads ------------------------------------------------------------------------------


def test_dr_cap_payload_stays_backward_compatible() -> None:
    assert parse_command("dr_cap", {"cap_w": 1500, "duration_s": 600}, HOUSE) == \
        SetDrCap(1500.0, 600.0)
    assert parse_command("dr_cap", {"cap_w": None}, HOUSE) == SetDrCap(None, None)
    start = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    cmd = parse_command("dr_cap", {"cap_w": 0, "event_id": "e-1", "start": start}, HOUSE)
    assert isinstance(cmd, SetDrCap) and cmd.event_id == "e-1" and cmd.start_s is not None
    with pytest.raises(InputError, match="7 days"):
        parse_command("dr_cap", {"cap_w": 0, "start": "2099-01-01T00:00:00Z"}, HOUSE)


def test_dr_start_and_absorb_payloads() -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    cmd = parse_command("dr_absorb", {"absorb_w": 800, "duration_s": 900, "event_id": "a1",
                                      "start": start.isoformat()}, HOUSE)
    assert isinstance(cmd, SetDrAbsorb) and cmd[:3] == (800.0, 900.0, "a1")
    assert cmd.start_s == pytest.approx(start.timestamp())
    assert parse_command("dr_absorb", {"absorb_w": None}, HOUSE) == SetDrAbsorb(None, None)


@pytest.mark.parametrize(("name", "doc", "field"), [
    ("dr_absorb", {"absorb_w": -1}, "absorb_w"),
    ("dr_absorb", {"absorb_w": 2000}, "absorb_w"),  # above the miners' capacity
    ("dr_absorb", {"absorb_w": "800"}, "absorb_w"),  # strict: a string is not a number
    ("dr_absorb", {"absorb_w": None, "duration_s": 60}, "duration_s"),
    ("dr_cap", {"cap_w": -5}, "cap_w"),
    ("dr_cap", {"cap_w": 100, "start": "2025-01-01T00:00:00"}, "start"),  # no offset
    ("dr_cap", {"cap_w": 100, "start": "tomorrow"}, "start"),
    ("dr_cap", {"cap_w": 100, "duration_s": 60, "start": "2001-01-01T00:00:00Z"}, "start"),
    ("dr_cap", {"cap_w": None, "start": "2099-01-01T00:00:00Z"}, "start"),
    ("dr_cap", {"cap_w": 100, "event_id": "has space"}, "event_id"),
    ("dr_cap", {"cap_w": 100, "duration_s": 0}, "duration_s"),
    ("dr_cap", {"cap_w": 100, "level": 2}, "level"),  # unknown key
])
def test_dr_payload_refusals_name_the_field(name: str, doc: dict[str, Any], field: str
                                            ) -> None:
    with pytest.raises(InputError) as err:
        parse_command(name, doc, HOUSE)
    assert field in _problems(err.value), _problems(err.value)


def test_mqtt_dr_commands_go_to_the_schedule_and_wake_the_loop() -> None:
    t = [1000.0]
    woken: list[float] = []
    cmds = MqttCommands(CommandQueue(), utc=lambda: t[0])
    cmds.wake = woken.append
    cmds.sink(SetDrCap(500.0, 60.0))
    cmds.sink(SetDrCap(400.0, None))  # anonymous: replaces the previous MQTT cap
    assert [(e.event_id, e.power_w, e.end_s) for e in cmds.dr.events()] == \
        [("mqtt-cap", 400.0, None)]
    cmds.sink(SetDrCap(300.0, 60.0, "ev-a"))
    cmds.sink(SetDrAbsorb(900.0, 30.0, "ev-b", 1010.0))
    assert len(cmds.dr.events()) == 3 and len(woken) == 4
    cmds.sink(SetDrCap(None, None, "ev-a"))  # ends that one only
    assert {e.event_id for e in cmds.dr.events()} == {"mqtt-cap", "ev-b"}
    cmds.sink(SetDrCap(None, None))  # ends every MQTT cap, not the absorption
    assert {e.event_id for e in cmds.dr.events()} == {"ev-b"}


def test_dr_absorb_maps_onto_overrides_outside_the_service_too() -> None:
    from controller.bridge.service_glue import apply_command

    ov = apply_command(NO_OVERRIDES, SetDrAbsorb(800.0, None))
    assert ov.dr_absorb_w == 800.0
    assert apply_command(ov, SetDrAbsorb(None, None)).dr_absorb_w is None


# -- schedule and hook --------------------------------------------------------------------------


def _ev(eid: str, kind: Any, w: float, start: float, end: float | None,
        source: str = "mqtt") -> DrEvent:
    return DrEvent(eid, source, kind, w, start, end, start)


def test_dr_hook_combines_events_and_follows_their_times() -> None:
    t = [0.0]
    sched = DrSchedule(utc=lambda: t[0])
    wakes: list[float] = []
    hook = DrHook(sched, wake=wakes.append)
    sched.put(_ev("a", "reduce", 800, 10, 40))
    sched.put(_ev("b", "reduce", 500, 20, None, "openadr"))
    sched.put(_ev("c", "absorb", 300, 30, 50))
    ov = hook(NO_OVERRIDES, 0.0)
    assert ov.dr_cap_w is None and wakes == [pytest.approx(10.005)]  # woken at the start
    t[0] = 10.0
    ov = hook(ov, 1.0)
    assert ov.dr_cap_w == 800 and hook.event_ids() == ("mqtt:a",)
    t[0] = 25.0
    ov = hook(ov, 2.0)
    assert ov.dr_cap_w == 500  # the lowest cap wins
    t[0] = 35.0
    ov = hook(ov, 3.0)
    assert (ov.dr_cap_w, ov.dr_absorb_w) == (500, 300)
    t[0] = 45.0
    ov = hook(ov, 4.0)
    assert (ov.dr_cap_w, ov.dr_absorb_w) == (500, 300)
    assert [e.event_id for e in sched.events()] == ["b", "c"]  # "a" ended and is gone
    t[0] = 55.0
    ov = hook(ov, 5.0)
    assert (ov.dr_cap_w, ov.dr_absorb_w) == (500, None)
    sched.cancel("openadr", "b")
    ov = hook(ov, 6.0)
    assert ov.dr_cap_w is None and hook.event_ids() == ()


def test_dr_hook_leaves_a_cap_set_by_another_source_alone() -> None:
    sched = DrSchedule(utc=lambda: 0.0)
    hook = DrHook(sched)
    ov = hook(NO_OVERRIDES._replace(dr_cap_w=700.0), 0.0)  # e.g. the HMI's cap
    assert ov.dr_cap_w == 700.0
    assert hook(ov, 1.0).dr_cap_w == 700.0


# -- OpenADR ------------------------------------------------------------------------------------


def _oadr(signals: list[dict[str, Any]], eid: str = "E1") -> dict[str, Any]:
    return {"event_descriptor": {"event_id": eid, "event_status": "active",
                                 "modification_number": 0},
            "event_signals": signals}


T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _sig(name: str, stype: str, *payloads: float, dur_s: float = 900,
         scale: str | None = None) -> dict[str, Any]:
    sig: dict[str, Any] = {"signal_name": name, "signal_type": stype, "intervals": [
        {"dtstart": T0 + timedelta(seconds=i * dur_s), "duration": timedelta(seconds=dur_s),
         "uid": i, "signal_payload": p} for i, p in enumerate(payloads)]}
    if scale is not None:
        sig["measurement"] = {"name": "RealPower", "unit": "W", "scale": scale}
    return sig


def test_dr_openadr_mapping_table() -> None:
    sec = OpenAdrSection(vtn_url="http://vtn", ven_name="v", simple_level_cap_w=[700, 300, 0])
    m = EventMapper(sec, 1444.0)
    evs = m.map(_oadr([_sig("SIMPLE", "level", 0, 1, 2, 3)]), 0.0)
    assert [(e.event_id, e.kind, e.power_w) for e in evs] == [
        ("E1#1", "reduce", 700), ("E1#2", "reduce", 300), ("E1#3", "reduce", 0)]
    assert evs[0].start_s == (T0 + timedelta(seconds=900)).timestamp()
    assert evs[0].end_s == evs[0].start_s + 900
    (e,) = m.map(_oadr([_sig("LOAD_CONTROL", "x-loadControlCapacity", 0.25)]), 0.0)
    assert (e.event_id, e.kind, e.power_w) == ("E1", "reduce", 361.0)
    (e,) = m.map(_oadr([_sig("LOAD_DISPATCH", "setpoint", 0.9, scale="k")]), 0.0)
    assert e.kind == "absorb" and e.power_w == pytest.approx(900.0)
    (e,) = m.map(_oadr([_sig("SIMPLE", "level", 2, dur_s=0)]), 0.0)
    assert e.end_s is None  # duration 0: until cancelled
    watts = EventMapper(OpenAdrSection(vtn_url="http://vtn", ven_name="v",
                                       load_control_capacity="watts"), 1444.0)
    (e,) = watts.map(_oadr([_sig("LOAD_CONTROL", "x-loadControlCapacity", 500)]), 0.0)
    assert e.power_w == 500
    default = EventMapper(OpenAdrSection(vtn_url="http://vtn", ven_name="v"), 1444.0)
    assert [e.power_w for e in default.map(_oadr([_sig("SIMPLE", "level", 1, 2)]), 0)] == \
        [722.0, 0.0]


@pytest.mark.parametrize(("signal", "reason"), [
    (_sig("SIMPLE", "level", 4), "not 0, 1, 2 or 3"),
    (_sig("SIMPLE", "price", 1), "only 'level'"),
    (_sig("LOAD_CONTROL", "x-loadControlCapacity", 1.5), "fraction"),
    (_sig("LOAD_CONTROL", "x-loadControlSetpoint", 20), "only x-loadControlCapacity"),
    (_sig("LOAD_DISPATCH", "setpoint", 5, scale="k"), "capacity"),
    (_sig("ELECTRICITY_PRICE", "price", 0.3), "not supported"),
    (_sig("SIMPLE", "level", float("nan")), "not a number"),
])
def test_dr_openadr_refusals_say_why(signal: dict[str, Any], reason: str) -> None:
    m = EventMapper(OpenAdrSection(vtn_url="http://vtn", ven_name="v"), 1444.0)
    with pytest.raises(Refused, match=reason):
        m.map(_oadr([signal]), 0.0)


def _site(**openadr: Any) -> SiteConfig:
    d = simkit.site_dict()
    d["openadr"] = openadr
    return parse_site(d, "site.toml")


@pytest.mark.parametrize(("section", "field"), [
    ({"ven_name": "v"}, "openadr.vtn_url"),
    ({"vtn_url": "ftp://x", "ven_name": "v"}, "openadr.vtn_url"),
    ({"vtn_url": "http://x", "ven_name": "v", "simple_level_cap_w": [100, 200, 0]},
     "openadr.simple_level_cap_w"),
    ({"vtn_url": "http://x", "ven_name": "v", "simple_level_cap_w": [100]},
     "openadr.simple_level_cap_w"),
    ({"vtn_url": "http://x", "ven_name": "v", "cert_file": "c.pem"}, "openadr"),
    ({"vtn_url": "http://x", "ven_name": "v", "ca_file": "ca.pem"}, "openadr"),
    ({"vtn_url": "http://x", "ven_name": "v", "poll_interval_s": 0}, "openadr.poll_interval_s"),
    ({"vtn_url": "http://x", "ven_name": "v", "poll_s": 1}, "openadr.poll_s"),
])
def test_dr_openadr_config_errors_name_the_field(section: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        _site(**section)
    assert field in _problems(err.value), _problems(err.value)


def test_dr_openadr_missing_certificate_file_is_refused(tmp_path: Path) -> None:
    from controller.runtime.openadr import Ven

    cfg = _site(vtn_url="https://vtn", ven_name="v", cert_file="ven.crt", key_file="ven.key")
    (tmp_path / "ven.crt").write_text("x")
    with pytest.raises(InputError) as err:
        Ven(cfg, DrSchedule(), tmp_path)
    assert list(_problems(err.value)) == ["openadr.key_file"]


# -- the service wakes on a signal --------------------------------------------------------------


class _Meter:
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readings(self) -> Mapping[str, Reading | None]:
        return {"grid_power_w": Reading(-2000.0, time.monotonic())}


class _Fleet:
    """Records when the tick handed over commands (the fleet's writes are tested against
    the emulators in test_dr_mqtt_service / test_dr_openadr_service)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[float, Commands]] = []

    async def start(self) -> None: ...

    async def stop(self, shutdown_state: str) -> None: ...

    def readings(self) -> Mapping[str, MinerReading]:
        return {}

    def submit(self, commands: Commands) -> None:
        self.submitted.append((time.monotonic(), commands))


async def test_dr_service_ticks_at_once_on_a_signal_and_at_an_event_start(tmp_path: Path
                                                                        ) -> None:
    d = simkit.site_dict()
    d["control"]["tick_s"] = 5.0  # long ticks: only a wake-up can be quick
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    cfg = parse_site(d, "site.toml")
    fleet = _Fleet()
    svc = Service(cfg, [_Meter()], fleet)
    sched = DrSchedule()
    hook = DrHook(sched, wake=svc.wake)
    svc.command_hooks.append(hook)
    sched.on_change.append(svc.wake)
    task = asyncio.create_task(svc.run())
    try:
        while svc.ticks < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        # From another thread, as MQTT does: a cap now.
        t0 = time.monotonic()
        threading.Thread(target=sched.put, args=(_ev("x", "reduce", 100, time.time(),
                                                     None),)).start()
        while not any(c.limiter != "" and t > t0 and c.total_target_w <= 100
                      and svc.overrides.dr_cap_w == 100 for t, c in fleet.submitted):
            assert time.monotonic() - t0 < 2, "no tick after the signal"
            await asyncio.sleep(0.005)
        now_latency = next(t for t, c in fleet.submitted if t > t0) - t0
        # A scheduled event: applied at its start, not at the next 5 s tick.
        start = time.time() + 1.0
        sched.put(_ev("y", "reduce", 50, start, None))
        t_start = time.monotonic() + (start - time.time())
        while svc.overrides.dr_cap_w != 50:
            assert time.monotonic() - t_start < 2, "the start did not wake the loop"
            await asyncio.sleep(0.005)
        start_latency = time.monotonic() - t_start
    finally:
        svc.stop()
        await task
    print(f"\nwake-up: signal -> tick {now_latency * 1000:.1f} ms; event start -> tick "
          f"{start_latency * 1000:.1f} ms (tick_s 5)")
    assert now_latency < 0.5 and -0.01 < start_latency < 0.5


# -- ledger -------------------------------------------------------------------------------------


def test_dr_request_of_a_tick() -> None:
    m = Measurements(grid_power_w=Reading(0.0, 0.0))
    cmds = Commands((), 0.0, "grid", "grid")
    rec = TickRecord(datetime.now(UTC), 0.0, m, cmds, NO_OVERRIDES, None, 0.0)
    assert dr_request_of(rec) == ""
    assert dr_request_of(rec._replace(overrides=NO_OVERRIDES._replace(dr_cap_w=0.0))) == \
        "reduce"
    assert dr_request_of(rec._replace(overrides=NO_OVERRIDES._replace(dr_absorb_w=900.0))) \
        == "absorb"
    assert dr_request_of(rec._replace(measurements=m._replace(dr_limit_w=300.0))) == "reduce"


def test_dr_events_are_kept_with_their_interval_and_survive_a_checkpoint() -> None:
    from controller.economics.hashprice import GivenHashprice
    from controller.ledger.writer import economics_from_site

    econ = economics_from_site(HOUSE)
    acc = IntervalAccumulator(0, 900)
    terms = GivenHashprice(Decimal("0.05"), Decimal("60000"), Decimal("2"))
    for i, ev in enumerate([(), ("openadr:E1",), ("mqtt:x", "openadr:E1")]):
        acc.add(Sample.from_meters(i, 1.0, pv_w=0, grid_w=100, battery_w=0, miner_w=100,
                                   hashrate_ths=1, import_price=Decimal("0.3"),
                                   export_price=Decimal("0"), btc=terms, dr_events=ev),
                econ, None)
    again = IntervalAccumulator.from_state(acc.state())
    assert acc.close(econ)["dr_events"] == again.close(econ)["dr_events"] == \
        "mqtt:x,openadr:E1"


def test_dr_migration_0003_upgrades_a_0002_ledger_with_rows(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    engine = make_engine(url, writer=True)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text("INSERT INTO ledger_site (site_id, currency, timezone, interval_s, "
                          "telemetry_step_s, created_at_s) VALUES ('s', 'EUR', 'UTC', 900, 60, "
                          "0)"))
        cols = [c for c in _interval_columns(conn) if c not in ("id", "site", "supersedes_id",
                                                                "reason")]
        values = ", ".join("'live'" if c == "source" else "0" for c in cols)
        conn.execute(text(f"INSERT INTO ledger_interval (site, {', '.join(cols)}) VALUES "
                          f"(1, {values})"))
    assert migrate(engine) == "0003"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT dr_events FROM ledger_interval")).scalar() == ""
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE ledger_interval SET dr_events = 'x'"))
    engine.dispose()


def _interval_columns(conn: Any) -> list[str]:
    return [r[1] for r in conn.execute(text("PRAGMA table_info(ledger_interval)"))]
