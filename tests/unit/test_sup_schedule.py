"""Schedules: allowed windows, quiet hours, holidays, the per-site start delay; checked on
DST days in Europe/Brussels against a brute-force reading of the local wall clock."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import simkit
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config.schedule import ScheduleSection
from controller.control.schedule import Schedule, site_start_delay_s
from controller.errors import InputError
from controller.sim.runner import simulate

TZ = "Europe/Brussels"
BRU = ZoneInfo(TZ)


def _utc(y: int, mo: int, d: int, h: int, mi: int = 0, fold: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=BRU, fold=fold).timestamp()


def _sched(site_id: str = "demo-house", **kw: Any) -> Schedule:
    return Schedule(ScheduleSection.model_validate(kw), TZ, site_id)


NIGHTS_AND_WEEKENDS = {
    "windows": [{"days": ["weekdays"], "start": "00:00", "end": "08:00"},
                {"days": ["weekends"], "start": "00:00", "end": "24:00"}],
    "quiet": [{"days": ["daily"], "start": "22:00", "end": "07:00", "max_power_w": 300}],
    "holidays": ["2026-12-25"],
}


def test_windows_quiet_hours_and_holidays() -> None:
    s = _sched(**NIGHTS_AND_WEEKENDS)
    # Tuesday 2026-11-24.
    assert s.at(_utc(2026, 11, 24, 3)).reason == "quiet_hours"
    assert s.at(_utc(2026, 11, 24, 3)).cap_w == 300
    assert s.at(_utc(2026, 11, 24, 7, 30)).cap_w == float("inf")  # window, not quiet
    off = s.at(_utc(2026, 11, 24, 12))
    assert (off.cap_w, off.reason) == (0.0, "schedule")
    assert off.until_s == _utc(2026, 11, 24, 22)  # next edge: quiet hours begin (cap 0 still)
    assert s.at(_utc(2026, 11, 28, 12)).cap_w == float("inf")  # Saturday
    # Christmas 2026 is a Friday, counted as a Sunday: allowed all day.
    assert s.at(_utc(2026, 12, 25, 12)).cap_w == float("inf")
    assert s.at(_utc(2026, 12, 24, 12)).cap_w == 0.0


def test_overnight_window_belongs_to_its_start_day() -> None:
    s = _sched(windows=[{"days": ["fri"], "start": "22:00", "end": "06:00"}])
    assert s.at(_utc(2026, 11, 27, 23)).cap_w == float("inf")  # Friday night
    assert s.at(_utc(2026, 11, 28, 5)).cap_w == float("inf")  # ... into Saturday
    assert s.at(_utc(2026, 11, 28, 23)).cap_w == 0.0  # Saturday night: not a Friday
    assert s.at(_utc(2026, 11, 27, 5)).cap_w == 0.0  # Friday early: Thursday's would be


def test_start_delay_is_per_site_reproducible_and_only_after_a_closed_spell() -> None:
    a, b = site_start_delay_s("house-a", 600), site_start_delay_s("house-b", 600)
    assert a != b and 0 <= a < 600 and 0 <= b < 600
    assert site_start_delay_s("house-a", 600) == a
    sched = {"windows": [{"days": ["daily"], "start": "00:00", "end": "08:00"},
                         {"days": ["daily"], "start": "08:00", "end": "09:00"}],
             "start_delay_max_s": 600}
    s = _sched("house-a", **sched)
    opened = _utc(2026, 11, 24, 0)
    assert s.at(opened + a - 1).cap_w == 0.0
    assert "start delay" in s.at(opened + a - 1).detail
    assert s.at(opened + a + 1).cap_w == float("inf")
    # 08:00 continues the 00:00 window: no second delay.
    assert s.at(_utc(2026, 11, 24, 8, 0) + 1).cap_w == float("inf")


@pytest.mark.parametrize(("patch", "field", "words"), [
    ({"windows": [{"start": "25:00", "end": "08:00"}]}, "schedule.windows[0].start",
     "not a time"),
    ({"windows": [{"start": "08:00", "end": "08:00"}]}, "schedule.windows[0]", "empty span"),
    ({"windows": [{"days": ["monday"], "start": "00:00", "end": "08:00"}]},
     "schedule.windows[0].days[0]", "Input should be"),
    ({"quiet": [{"start": "22:00", "end": "07:00", "max_power_w": -1}]},
     "schedule.quiet[0].max_power_w", "greater than or equal to 0"),
    ({"quiet": [{"start": "22:00", "end": "07:00"}]}, "schedule.quiet[0].max_power_w",
     "required key is missing"),
    ({"holidays": ["2026-02-30"]}, "schedule.holidays[0]", "date"),
    ({"holidays": ["2026-12-25", "2026-12-25"]}, "schedule.holidays", "listed twice"),
])
def test_bad_schedule_config_names_the_field(patch: dict[str, Any], field: str,
                                             words: str) -> None:
    d = simkit.site_dict()
    d["schedule"] = patch
    with pytest.raises(InputError) as ei:
        simkit.parse_site(d)
    text = str(ei.value)
    assert field in text and words in text, text


def test_unknown_time_zone_is_refused() -> None:
    d = simkit.site_dict()
    d["site"]["timezone"] = "Europe/Brussel"
    with pytest.raises(InputError, match="unknown time zone"):
        simkit.parse_site(d)


# -- DST: cached state == a brute-force reading of the wall clock ---------------------------

def _brute(spec: dict[str, Any], utc_s: float) -> float:
    """The cap from first principles: local date and wall time, nothing cached."""
    local = dt.datetime.fromtimestamp(utc_s, BRU)
    minute = local.hour * 60 + local.minute + local.second / 60

    def day(d: dt.date) -> int:
        return 6 if d.isoformat() in spec.get("holidays", []) else d.weekday()

    groups = {"weekdays": range(5), "weekends": (5, 6), "daily": range(7),
              **{n: (i,) for i, n in enumerate(("mon", "tue", "wed", "thu", "fri", "sat",
                                                "sun"))}}

    def inside(span: dict[str, Any]) -> bool:
        days = {i for g in span.get("days", ["daily"]) for i in groups[g]}
        s = int(span["start"][:2]) * 60 + int(span["start"][3:])
        e = int(span["end"][:2]) * 60 + int(span["end"][3:])
        e = e if e > s else e + 1440
        today, yday = local.date(), local.date() - dt.timedelta(days=1)
        return (day(today) in days and s <= minute < e) or (
            e > 1440 and day(yday) in days and minute + 1440 < e)

    if spec.get("windows") and not any(inside(w) for w in spec["windows"]):
        return 0.0
    caps = [q["max_power_w"] for q in spec.get("quiet", []) if inside(q)]
    return min(caps, default=float("inf"))


HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15,
                                                                                      30, 59]))
SPAN = st.fixed_dictionaries({
    "days": st.lists(st.sampled_from(["mon", "sat", "sun", "weekdays", "weekends", "daily"]),
                     min_size=1, max_size=2),
    "start": HHMM, "end": HHMM,
}).filter(lambda s: s["start"] != s["end"])
# The 2026 DST days in Brussels (29 March, 25 October) and their neighbours.
DST_DAYS = [dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 10, 24),
            dt.date(2026, 10, 25), dt.date(2026, 10, 26)]


@settings(max_examples=60, deadline=None)
@given(windows=st.lists(SPAN, max_size=2), quiet=st.lists(SPAN, max_size=2),
       caps=st.lists(st.floats(0, 2000), min_size=2, max_size=2),
       day=st.sampled_from(DST_DAYS), holiday=st.booleans(),
       offsets=st.lists(st.integers(0, 3 * 86_400), min_size=5, max_size=40))
def test_cached_schedule_matches_the_wall_clock_across_dst(
        windows: list[dict[str, Any]], quiet: list[dict[str, Any]], caps: list[float],
        day: dt.date, holiday: bool, offsets: list[int]) -> None:
    spec: dict[str, Any] = {
        "windows": windows,
        "quiet": [{**q, "max_power_w": c} for q, c in zip(quiet, caps, strict=False)],
        "holidays": [day.isoformat()] if holiday else [],
    }
    s = _sched(**spec)
    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() - 86_400
    # Walk forward like a controller does (cache in use), and around every DST instant.
    times = sorted({t0 + o for o in offsets} | {
        _utc(2026, 3, 29, 1, 59) + k * 30 for k in range(6)} | {
        _utc(2026, 10, 25, 2, 59, fold=1) + k * 30 for k in range(6)})
    for t in times:
        assert s.at(t).cap_w == _brute(spec, t), dt.datetime.fromtimestamp(t, BRU)


def test_the_skipped_and_the_doubled_hour() -> None:
    s = _sched(windows=[{"days": ["daily"], "start": "02:30", "end": "03:30"}])
    # 29 March 2026: 02:00 -> 03:00. The window is open 03:00-03:30 (wall clock).
    assert s.at(_utc(2026, 3, 29, 1, 59)).cap_w == 0.0
    assert s.at(_utc(2026, 3, 29, 3, 10)).cap_w == float("inf")
    assert s.at(_utc(2026, 3, 29, 3, 40)).cap_w == 0.0
    # 25 October 2026: 03:00 -> 02:00. 02:30-03:00 happens twice: open both times.
    assert s.at(_utc(2026, 10, 25, 2, 40, fold=0)).cap_w == float("inf")
    assert s.at(_utc(2026, 10, 25, 2, 10, fold=1)).cap_w == 0.0
    assert s.at(_utc(2026, 10, 25, 2, 40, fold=1)).cap_w == float("inf")


# -- through the controller -------------------------------------------------------------------

def test_outside_the_window_miners_are_off_and_quiet_hours_cap_them() -> None:
    d = simkit.site_dict()
    d["schedule"] = {
        "windows": [{"days": ["daily"], "start": "10:00", "end": "14:00"}],
        "quiet": [{"days": ["daily"], "start": "12:00", "end": "13:00", "max_power_w": 40}],
    }
    for m in d["miners"]:
        m["heats_tank"] = False
    del d["tank"], d["battery"]
    cfg = simkit.parse_site(d)
    start = _utc(2026, 6, 10, 9)  # a sunny June day, 09:00 local
    n = 6 * 60
    tr = simkit.trace(np.full(n, 6000.0), 400.0, step_s=60.0, export_price=0.0,
                      start_s=start)
    r = simulate(cfg, tr, "hearth", progress=False)
    c = r.columns
    local_h = (np.arange(n) * 60 + (start - _utc(2026, 6, 10, 0))) / 3600
    closed = (local_h < 10) | (local_h >= 14)
    # Outside the window only the no-pause Bitaxes' minimum is left (AxeOS cannot pause).
    floor = simkit.held_w(cfg)
    assert np.all(c["miner_target_w"][closed] <= floor + 1e-9)
    assert r.limiter[0] == "schedule"
    quiet = (local_h >= 12) & (local_h < 13)
    assert np.all(c["miner_target_w"][quiet] <= 40 + 1e-9)
    assert "quiet_hours" in {r.limiter[i] for i in np.flatnonzero(quiet)}
    open_ = (local_h >= 10.5) & (local_h < 12)
    assert np.mean(c["miner_w"][open_]) > 1300  # surplus is taken while allowed
