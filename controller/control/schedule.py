"""When the miners may run: allowed windows, quiet hours, holidays, a start delay.

Pure: `Schedule.at(utc_s)` takes the time (UTC epoch seconds) as an input and never reads
a clock. Membership is a function of the site's local wall clock: an instant is inside a
span when its local date and wall time fall in it, so a DST change needs no special
case (the night the clocks go back, 02:00-03:00 happens twice and counts twice; the night
they go forward a span edge in the skipped hour takes effect when the clock jumps).

The step runs every second for years, so the state is cached until its next boundary:
the earliest span edge (start, end, start + delay) after now, or the next change of UTC
offset, whichever comes first. Between two of those, nothing can change.

The start delay: when a window opens after a closed period, this site waits a delay in
0..`start_delay_max_s` drawn from its site id (a hash, so the same every day, reproducible
in tests, and different across a fleet of sites that all got the same schedule).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import NamedTuple
from zoneinfo import ZoneInfo

from controller.config.schedule import DAY_NAMES, ScheduleSection, _Span

_DAY = dt.timedelta(days=1)


class ScheduleState(NamedTuple):
    cap_w: float  # cap on the miners' total power; inf = no cap from the schedule
    reason: str  # "" (none), "schedule" (outside the windows, or start delay), "quiet_hours"
    detail: str  # for people
    until_s: float  # UTC epoch seconds: the state holds until then


def site_start_delay_s(site_id: str, max_s: float) -> float:
    """This site's delay after a window opens: 0..max_s, fixed by the site id."""
    if max_s <= 0:
        return 0.0
    h = hashlib.sha256(site_id.encode()).digest()
    return max_s * int.from_bytes(h[:8], "big") / 2**64


class _SpanT(NamedTuple):
    days: frozenset[int]
    start_min: int
    end_min: int  # may be > 1440 (overnight)
    cap_w: float
    label: str


def _compile(s: _Span, cap_w: float) -> _SpanT:
    return _SpanT(s.weekdays, s.start_min, s.end_min, cap_w, f"{s.start}-{s.end}")


class Schedule:
    def __init__(self, cfg: ScheduleSection, timezone: str, site_id: str) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(timezone)
        self.delay_s = site_start_delay_s(site_id, cfg.start_delay_max_s)
        self._windows = tuple(_compile(w, math.inf) for w in cfg.windows)
        self._quiet = tuple(_compile(q, q.max_power_w) for q in cfg.quiet)
        self._holidays = frozenset(cfg.holidays)
        self._holiday_day = DAY_NAMES.index(cfg.holidays_as)
        self._cached: ScheduleState | None = None
        self._cached_from = math.inf

    # -- the cached entry point -----------------------------------------------------------

    def at(self, utc_s: float) -> ScheduleState:
        c = self._cached
        if c is not None and self._cached_from <= utc_s < c.until_s:
            return c
        c = self.evaluate(utc_s)
        self._cached, self._cached_from = c, utc_s
        return c

    # -- evaluation (uncached) ------------------------------------------------------------

    def day_of(self, d: dt.date) -> int:
        """Weekday index (mon = 0) a date counts as: a holiday counts as `holidays_as`."""
        return self._holiday_day if d in self._holidays else d.weekday()

    def _covering(self, spans: tuple[_SpanT, ...], local: dt.datetime
                  ) -> list[tuple[_SpanT, dt.date]]:
        """The spans (with their start date) that contain this local wall time."""
        d = local.date()
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        out = []
        for s in spans:
            if self.day_of(d) in s.days and s.start_min <= minute < s.end_min:
                out.append((s, d))
            elif s.end_min > 1440:
                prev = d - _DAY
                if self.day_of(prev) in s.days and minute + 1440 < s.end_min:
                    out.append((s, prev))
        return out

    def _local(self, utc_s: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(utc_s, self.tz)

    def _utc_of(self, day: dt.date, minutes: int, fold: int = 0) -> float:
        naive = dt.datetime(day.year, day.month, day.day) + dt.timedelta(minutes=minutes)
        return naive.replace(tzinfo=self.tz, fold=fold).timestamp()

    def window_open(self, utc_s: float) -> bool:
        """Inside an allowed window (no windows configured: always), ignoring the delay."""
        if not self._windows:
            return True
        return bool(self._covering(self._windows, self._local(utc_s)))

    def evaluate(self, utc_s: float) -> ScheduleState:
        local = self._local(utc_s)
        edges: list[float] = []
        cap, reason, detail = math.inf, "", ""
        if self._windows:
            inside = self._covering(self._windows, local)
            if not inside:
                cap, reason, detail = 0.0, "schedule", "outside the allowed windows"
            elif self.delay_s > 0:
                # Delayed only if every window we are in has just opened after a closed spell.
                waits: list[tuple[float, str]] = []
                for s, day in inside:
                    opened = self._utc_of(day, s.start_min)
                    if self.window_open(opened - 1.0):
                        waits = []
                        break
                    waits.append((opened + self.delay_s, s.label))
                if waits and all(utc_s < w for w, _ in waits):
                    ready, label = min(waits)
                    edges.append(ready)
                    cap, reason = 0.0, "schedule"
                    detail = (f"window {label} opened; this site's start delay is "
                              f"{self.delay_s:.0f} s")
                else:
                    edges.extend(w for w, _ in waits if w > utc_s)
        if reason == "":
            quiet = self._covering(self._quiet, local)
            if quiet:
                q = min(quiet, key=lambda x: x[0].cap_w)[0]
                cap, reason = q.cap_w, "quiet_hours"
                detail = f"quiet hours {q.label}: miners capped at {q.cap_w:.0f} W"
        # Every span edge around today, both readings of an ambiguous wall time.
        today = local.date()
        for day in (today - _DAY, today, today + _DAY, today + 2 * _DAY):
            edges.append(self._utc_of(day, 0))
            for s in (*self._windows, *self._quiet):
                for minutes in (s.start_min, s.end_min):
                    for fold in (0, 1):
                        edges.append(self._utc_of(day, minutes, fold))
                if self.delay_s > 0 and s.cap_w == math.inf:
                    edges.append(self._utc_of(day, s.start_min) + self.delay_s)
        until = min((e for e in edges if e > utc_s), default=utc_s + 86_400.0)
        until = self._offset_change_before(utc_s, until)
        return ScheduleState(cap, reason, detail, until)

    def _offset_change_before(self, start_s: float, end_s: float) -> float:
        """The first instant in (start, end] where the UTC offset differs from start's."""
        off0 = self._local(start_s).utcoffset()
        if self._local(end_s).utcoffset() == off0:
            return end_s
        lo, hi = start_s, end_s  # offset(lo) == off0, offset(hi) != off0
        while hi - lo > 0.5:
            mid = (lo + hi) / 2
            if self._local(mid).utcoffset() == off0:
                lo = mid
            else:
                hi = mid
        # Offsets change on whole seconds: land on that second, not half a second late.
        t = float(math.floor(hi))
        if t > start_s and self._local(t).utcoffset() != off0:
            return t
        return float(math.ceil(hi))
