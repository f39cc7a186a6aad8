"""`[schedule]`: when the miners may run, quiet hours with a power cap, holidays.

All times are wall-clock times in the site's time zone (`site.timezone`), "HH:MM" with
"24:00" allowed as an end. A window whose end is earlier than its start runs past
midnight and belongs to the day it starts on. Days are named `mon` .. `sun`, or
`weekdays`, `weekends`, `daily`; a date listed in `holidays` counts as the day named by
`holidays_as` (default `sun`), for windows and quiet hours alike.

```toml
[schedule]
start_delay_max_s = 600            # random (per site, reproducible) delay when a window opens
holidays = ["2026-12-25", "2027-01-01"]
holidays_as = "sun"

[[schedule.windows]]               # no windows at all: always allowed
days = ["weekdays"]
start = "00:00"
end = "08:00"

[[schedule.windows]]
days = ["weekends"]
start = "00:00"
end = "24:00"

[[schedule.quiet]]
days = ["daily"]
start = "22:00"
end = "07:00"
max_power_w = 300                  # total miner power during quiet hours
```

The logic that evaluates it lives in `controller/control/schedule.py` (pure).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from controller.config.base import Strict

DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS: dict[str, tuple[int, ...]] = {
    **{name: (i,) for i, name in enumerate(DAY_NAMES)},
    "weekdays": (0, 1, 2, 3, 4),
    "weekends": (5, 6),
    "daily": (0, 1, 2, 3, 4, 5, 6),
}
DaySpec = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "weekdays", "weekends",
                  "daily"]

def _daily() -> list[DaySpec]:
    return ["daily"]


_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def minutes_of(hhmm: str) -> int:
    """'HH:MM' -> minutes after midnight (0..1440)."""
    m = _HHMM.match(hhmm)
    if m is None:
        raise ValueError(f"{hhmm!r} is not a time 'HH:MM' (00:00 .. 24:00)")
    minutes = int(m.group(1)) * 60 + int(m.group(2))
    if minutes > 1440:
        raise ValueError(f"{hhmm!r} is past 24:00")
    return minutes


class _Span(Strict):
    days: list[DaySpec] = Field(
        default_factory=_daily, min_length=1,
        description="mon..sun, weekdays, weekends or daily (a holiday counts as holidays_as)",
    )
    start: str = Field(description="Local wall-clock time 'HH:MM'")
    end: str = Field(description="Local 'HH:MM' (24:00 = midnight); before start = overnight")

    @field_validator("start")
    @classmethod
    def _start(cls, v: str) -> str:
        if minutes_of(v) >= 1440:
            raise ValueError(f"{v!r}: a start must be before 24:00")
        return v

    @field_validator("end")
    @classmethod
    def _end(cls, v: str) -> str:
        minutes_of(v)
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        s, e = minutes_of(self.start), minutes_of(self.end)
        if s == e:
            raise ValueError(f"end ({self.end}) equals start ({self.start}): an empty span; "
                             "write start = '00:00', end = '24:00' for a whole day")
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(i for d in self.days for i in DAY_GROUPS[d])

    @property
    def start_min(self) -> int:
        return minutes_of(self.start)

    @property
    def end_min(self) -> int:
        """Minutes after the start day's midnight: above 1440 for an overnight span."""
        s, e = minutes_of(self.start), minutes_of(self.end)
        return e if e > s else e + 1440


class WindowSpec(_Span):
    """A span in which the miners may run."""


class QuietSpec(_Span):
    """A span in which the miners' total power is capped (noise, neighbours)."""

    max_power_w: Annotated[float, Field(ge=0)] = Field(
        description="Total miner power allowed during these hours (W); 0 = silent"
    )


class ScheduleSection(Strict):
    windows: list[WindowSpec] = Field(
        default_factory=list,
        description="When the miners may run; none listed = always (quiet hours still apply)",
    )
    quiet: list[QuietSpec] = Field(default_factory=list, description="Quiet hours with a cap")
    holidays: list[Annotated[dt.date, Field(strict=False)]] = Field(  # TOML date or text
        default_factory=list, description="Dates (YYYY-MM-DD) that count as holidays_as"
    )
    holidays_as: DayName = Field(default="sun", description="The day a holiday counts as")
    start_delay_max_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=0.0,
        description="When a window opens, wait a per-site delay in 0..this (seconds), "
        "reproducible from the site id, so many sites do not switch together",
    )

    @field_validator("holidays")
    @classmethod
    def _unique_dates(cls, v: list[dt.date]) -> list[dt.date]:
        dupes = sorted({d for d in v if v.count(d) > 1})
        if dupes:
            raise ValueError(f"listed twice: {[d.isoformat() for d in dupes]}")
        return v
