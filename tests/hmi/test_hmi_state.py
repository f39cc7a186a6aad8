"""What the page is told, without a server: plain words for the controller's trips and the
grid's (demand-response) requests, the 24 h history buckets, the live fan-out, and the
commands as Overrides."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hmi_testkit import wait_for

from controller.config import load_site
from controller.config.models import Mode, SiteConfig
from controller.control.controller import Controller
from controller.control.overrides import Overrides
from controller.control.types import Measurements, MinerReading, Reading
from controller.errors import InputError
from controller.runtime.dr import DrEvent, DrSchedule, Kind
from controller.runtime.ports import TickRecord
from hmi.commands import PAUSE_REASON, CommandHandler, MemoryOverrides
from hmi.publisher import HmiPublisher
from hmi.schemas import HistoryPoint
from hmi.state import MAX_SCHEDULED, empty_state, grid_requests_of, power_words, state_of

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 4, 21, 10, 0, tzinfo=UTC)


def _site(name: str = "house-10kwp") -> SiteConfig:
    return load_site(REPO / "hil" / "sites" / f"{name}.toml")


def _meas(now: float, grid_w: float | None = -3000.0, pv_w: float = 4000.0,
          tank_c: float = 50.0, miner_w: float = 0.0) -> Measurements:
    return Measurements(
        grid_power_w=None if grid_w is None else Reading(grid_w, now),
        pv_power_w=Reading(pv_w, now), battery_power_w=Reading(0.0, now),
        soc_pct=Reading(90.0, now), tank_temp_c=Reading(tank_c, now),
        miners={"s9": MinerReading(miner_w, miner_w / 90, miner_w > 0, now)},
        import_price_per_kwh=0.32, export_price_per_kwh=0.05)


NONE = Overrides()


def _tick(cfg: SiteConfig, ctrl: Controller, m: Measurements, now: float, at: datetime,
          o: Overrides = NONE) -> TickRecord:
    cmds = ctrl.step(m, now, o)
    return TickRecord(at, now, m, cmds, o, ctrl.debug, 0.0)


def test_safety_trips_are_told_in_plain_words() -> None:
    cfg = _site()
    ctrl = Controller(cfg)
    rec = _tick(cfg, ctrl, _meas(100.0, grid_w=None), 100.0, T0)
    s = state_of(rec, cfg, 1, "b")
    codes = {a.code: a for a in s.alarms}
    assert "stale_meter" in codes
    a = codes["stale_meter"]
    assert a.severity == "alarm" and a.title == "No reading from the grid meter"
    assert "turned down to zero" in a.detail
    assert s.status == "Miners are stopping: no reading from the grid meter."
    assert s.flows is not None and s.flows.load_w is None  # no meter: no honest house load

    hot = _tick(cfg, Controller(cfg), _meas(200.0, tank_c=69.5), 200.0, T0)
    tank = {a.code: a for a in state_of(hot, cfg, 2, "b").alarms}["tank_max"]
    assert tank.severity == "info" and tank.title == "Tank is full of heat"


def test_start_up_hold_is_not_a_pause() -> None:
    cfg = _site()
    o = Overrides(hold_reason="random start-up delay (12 s left)")
    rec = _tick(cfg, Controller(cfg), _meas(1.0), 1.0, T0, o)
    s = state_of(rec, cfg, 1, "b")
    assert not s.paused
    hold = next(a for a in s.alarms if a.code == "hold")
    assert "just started" in hold.detail and "12 s left" in hold.detail
    paused = state_of(_tick(cfg, Controller(cfg), _meas(1.0), 1.0, T0,
                            Overrides(hold_reason=PAUSE_REASON)), cfg, 1, "b")
    assert paused.paused and paused.status.startswith("Miners are paused")


def test_stale_readings_are_marked() -> None:
    cfg = _site()
    m = _meas(0.0)._replace(pv_power_w=Reading(4000.0, -60.0))
    rec = _tick(cfg, Controller(cfg), m, 0.0, T0)
    s = state_of(rec, cfg, 1, "b")
    assert s.flows is not None and s.flows.stale == ["pv_w"]


H = timedelta(hours=1)


def _ev(event_id: str, kind: Kind, power_w: float, start: datetime, end: datetime | None,
        source: str = "openadr") -> DrEvent:
    return DrEvent(event_id, source, kind, power_w, start.timestamp(),
                   None if end is None else end.timestamp(), start.timestamp())


def test_grid_requests_say_who_asks_what_until_when() -> None:
    # T0 is Monday 21 April 2025, 10:00 UTC = 12:00 in Brussels (the site's time zone).
    events = [
        _ev("far", "reduce", 300, T0 + 3 * 24 * H + 8 * H, None, "mqtt"),
        _ev("ev-8", "reduce", 0, T0 + 21 * H, T0 + 23 * H, "mqtt"),
        _ev("mqtt-absorb", "absorb", 1500, T0 - H / 2, None, "mqtt"),
        _ev("e-17", "reduce", 800, T0 - H, T0 + 6.5 * H),
        _ev("over", "absorb", 900, T0 - 2 * H, T0),  # ended just now: the hook dropped it
    ]
    reqs = grid_requests_of(events, T0, "Europe/Brussels")
    assert [(r.event_id, r.active) for r in reqs] == [
        ("e-17", True), ("mqtt-absorb", True), ("ev-8", False), ("far", False)]
    e17, absorb, ev8, far = reqs
    assert e17.detail == ("The grid operator asked the miners to stay under 800 W until "
                          "18:30 (OpenADR event e-17).")
    assert e17.title == "Grid request: use less"
    assert (e17.kind, e17.power_w, e17.source) == ("reduce", 800.0, "openadr")
    assert e17.start == "2025-04-21T09:00:00+00:00" and e17.end == "2025-04-21T16:30:00+00:00"
    assert absorb.detail == ("A grid-service request asked the miners to take at least 1.5 kW "
                             "until further notice (sent over MQTT).")
    assert absorb.title == "Grid request: use more" and absorb.end is None
    assert ev8.detail == ("A grid-service request has asked the miners to switch off from "
                          "tomorrow 09:00 to 11:00 (MQTT event ev-8).")
    assert ev8.title == "Planned grid request"
    assert far.detail == ("A grid-service request has asked the miners to stay under 300 W "
                          "from Thu 24 Apr 20:00 until further notice (MQTT event far).")
    assert grid_requests_of([], T0, "Europe/Brussels") == []


def test_only_the_next_scheduled_requests_are_sent_to_the_page() -> None:
    later = [_ev(f"e{i}", "absorb", 500, T0 + (i + 1) * H, T0 + (i + 2) * H) for i in range(9)]
    now = _ev("now", "absorb", 500, T0, T0 + H)  # starts at this very tick: in force
    reqs = grid_requests_of([*later, now], T0, "UTC")
    assert [r.event_id for r in reqs] == ["now", *(f"e{i}" for i in range(MAX_SCHEDULED))]
    assert reqs[1].detail.endswith("from 11:00 to 12:00 (OpenADR event e0).")


def test_power_in_a_residents_words() -> None:
    assert [power_words(w) for w in (0, 800, 999.6, 1000, 1444, 1500, 12_345)] == [
        "0 W", "800 W", "1000 W", "1 kW", "1.44 kW", "1.5 kW", "12.35 kW"]


def test_state_carries_the_absorption_in_force_and_the_requests() -> None:
    cfg = _site()
    o = Overrides(dr_absorb_w=1200.0, dr_cap_w=None)
    rec = _tick(cfg, Controller(cfg), _meas(1.0), 1.0, T0, o)
    s = state_of(rec, cfg, 1, "b", [_ev("e-3", "absorb", 1200, T0 - H, T0 + H)])
    assert s.dr_absorb_w == 1200.0 and s.dr_cap_w is None
    assert [r.event_id for r in s.grid_requests] == ["e-3"]
    plain = state_of(rec, cfg, 1, "b")  # a site without demand response
    assert plain.grid_requests == [] and "grid_requests" in plain.model_dump()
    assert empty_state(cfg, "b").grid_requests == [] and empty_state(cfg, "b").dr_absorb_w is None
    held = rec._replace(commands=rec.commands._replace(limiter="dr_absorb", trips=()))
    assert state_of(held, cfg, 1, "b").status == \
        "Miners take extra power because the grid operator asked for it."


def test_the_publisher_reads_the_services_schedule_each_tick() -> None:
    cfg = _site()
    pub = HmiPublisher(cfg)
    _ticks(pub, cfg, 1, T0)
    assert pub.state.grid_requests == []  # no schedule: nothing extra
    dr = DrSchedule(utc=lambda: T0.timestamp())
    pub.dr = dr
    dr.put(_ev("e-17", "reduce", 800, T0 - H, T0 + H))
    _ticks(pub, cfg, 1, T0)
    assert [r.event_id for r in pub.state.grid_requests] == ["e-17"]
    assert '"grid_requests":[{"event_id":"e-17"' in pub.state_json
    dr.cancel("openadr", "e-17")
    _ticks(pub, cfg, 1, T0)
    assert pub.state.grid_requests == []


def _ticks(pub: HmiPublisher, cfg: SiteConfig, seconds: int, start: datetime,
           grid_w: float = -3000.0) -> None:
    ctrl = Controller(cfg)
    for i in range(seconds):
        now = 1000.0 + i
        pub.publish(_tick(cfg, ctrl, _meas(now, grid_w=grid_w + i), now,
                          start + timedelta(seconds=i)))


def test_history_points_are_step_averages() -> None:
    cfg = _site()
    pub = HmiPublisher(cfg, history_step_s=60)
    _ticks(pub, cfg, 150, T0)
    pts = pub.history()
    assert [p.t for p in pts] == [T0.timestamp(), T0.timestamp() + 60]
    # grid_w rose by 1 W a second: each point is the mean of its 60 ticks
    assert pts[0].grid_w == pytest.approx(-3000 + 29.5)
    assert pts[1].grid_w == pytest.approx(-3000 + 89.5)
    assert pts[0].import_price == 0.32 and pts[0].tank_c == 50.0
    assert pub.seq == 150 and pub.state.seq == 150


def test_history_keeps_one_day_and_restarts_when_the_clock_goes_back(
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = _site()
    pub = HmiPublisher(cfg, history_step_s=3600)
    ctrl = Controller(cfg)
    for h in range(30):
        pub.publish(_tick(cfg, ctrl, _meas(float(h)), float(h), T0 + timedelta(hours=h)))
    pts = pub.history()
    assert len(pts) == 24 and pts[-1].t - pts[0].t == 23 * 3600
    assert len(pub.history(hours=3)) == 3
    pub.publish(_tick(cfg, ctrl, _meas(31.0), 31.0, T0))  # the wall clock jumped back
    assert pub.history() == []
    assert "clock went back" in caplog.text


def test_backfill_goes_before_live_points() -> None:
    cfg = _site()
    pub = HmiPublisher(cfg, history_step_s=60)
    _ticks(pub, cfg, 121, T0)
    old = [HistoryPoint(t=T0.timestamp() - 60 * k, pv_w=1.0, load_w=1.0, miners_w=0.0,
                        grid_w=0.0, soc_pct=None, tank_c=None, import_price=None)
           for k in (3, 1, 2, 0)]  # unordered, one overlapping a live point
    assert pub.backfill(old) == 3
    ts = [p.t for p in pub.history()]
    assert ts == sorted(ts) and len(ts) == 5


async def test_live_feed_drops_the_oldest_for_a_slow_browser_and_ends_on_close() -> None:
    cfg = _site()
    pub = HmiPublisher(cfg)
    sub = pub.subscribe()
    _ticks(pub, cfg, 100, T0)
    got = []
    while not sub.queue.empty():
        got.append(await sub.next())
    assert len(got) == 32 and sub.dropped > 0
    assert '"seq":100' in got[-1][1] or '"seq":100' in got[-2][1]
    await pub.close()
    assert await sub.next() is None
    late = pub.subscribe()
    assert await late.next() is None  # a feed opened while closing ends at once
    sub.close()
    late.close()
    assert pub.subscribers == 0


async def test_a_publish_from_another_thread_reaches_the_browser() -> None:
    cfg = _site()
    pub = HmiPublisher(cfg)
    sub = pub.subscribe()
    t = threading.Thread(target=_ticks, args=(pub, cfg, 1, T0))
    t.start()
    t.join()
    event, data = await asyncio.wait_for(sub.next(), 5)  # type: ignore[misc]
    assert event == "state" and '"seq":1' in data


def test_commands_check_the_site_and_change_only_what_they_say(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "hmi.commands")
    cfg = _site("farm-30kwp")
    port = MemoryOverrides()
    h = CommandHandler(cfg, port)
    assert h.mode("heating", "me") == "Mode: Heat first"
    assert port.value.mode is Mode.HEATING
    with pytest.raises(InputError) as err:
        h.miner_power("s19", 1000, "me")
    assert "relay" in err.value.problems[0].reason
    assert "refused command commands/miner-power from me" in caplog.text
    assert h.miner_power("s19", 0, "me") == "s19: kept off"
    with pytest.raises(InputError):
        h.miner_power("nope", None, "me")
    with pytest.raises(InputError):
        h.tank_target(float(cfg.tank.max_c) if cfg.tank else 99.0, "me")
    assert dict(port.value.manual_w) == {"s19": 0.0}
    h.miner_power("s19", None, "me")
    assert dict(port.value.manual_w) == {}

    house = _site()
    no_tank = house.model_copy(update={"tank": None})
    with pytest.raises(InputError) as err:
        CommandHandler(no_tank, MemoryOverrides()).mode("heating", "me")
    assert err.value.problems[0].where == "mode"


def test_resume_lifts_a_pause_but_not_a_start_up_hold() -> None:
    port = MemoryOverrides()
    h = CommandHandler(_site(), port)
    port.set(Overrides(hold_reason="paused over MQTT"))
    h.pause(False, "me")
    assert port.value.hold_reason is None
    h.pause(True, "me")
    assert port.value.hold_reason == PAUSE_REASON and h.overrides().paused
    port.set(Overrides(hold_reason="waiting for fresh measurements"))
    h.pause(False, "me")
    assert port.value.hold_reason == "waiting for fresh measurements"


async def test_a_dr_cap_with_a_duration_lifts_itself() -> None:
    port = MemoryOverrides()
    h = CommandHandler(_site(), port)
    h.dr_cap(800.0, 0.05, "me")
    assert port.value.dr_cap_w == 800.0 and h.overrides().dr_cap_until is not None
    await wait_for(lambda: port.value.dr_cap_w is None, 5, "the cap to lift")
    assert h.dr_until is None
    h.dr_cap(500.0, 60.0, "me")
    timer = h._dr_timer
    assert timer is not None
    h.dr_cap(400.0, None, "me")  # a new cap replaces the timed one for good
    assert timer.cancelled() and port.value.dr_cap_w == 400.0
    with pytest.raises(InputError):
        h.dr_cap(None, 60.0, "me")


def test_hmi_settings_validate_like_the_rest_of_the_site_file() -> None:
    from pydantic import ValidationError

    from controller.config.hmi import HmiSection
    from controller.config.load import problems_from_validation
    from hmi.app import hmi_settings

    s = HmiSection()
    assert s.auth_store("/var/lib/hearth") == "/var/lib/hearth/hmi-auth.json"
    assert HmiSection(auth_store_path="/etc/hearth/a.json").auth_store("/x") == \
        "/etc/hearth/a.json"
    with pytest.raises(ValidationError) as err:
        HmiSection.model_validate({"auth_store_path": "auth.json", "listen_port": 0,
                                   "colour": "red"})
    got = {p.where: p.reason for p in problems_from_validation(err.value)}
    assert got["auth_store_path"] == "must be an absolute path"
    assert "greater than or equal to 1" in got["listen_port"]
    assert got["colour"] == "unknown key (typo?)"
    assert hmi_settings(_site()) == HmiSection()  # until SiteConfig carries [hmi]
