"""Ledger settings of a site: where the ledger lives, how it batches, what it accounts.

The ledger (controller/ledger) turns every tick into per-interval money, sats and heat.
These settings decide the database (SQLite under `data_dir` by default, PostgreSQL by
URL), the accounting interval (clock-aligned like market intervals), how often it writes
(the Pi's SD card wears with every commit) and the terms of optional grid services.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from controller.config.base import Strict

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
URL_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def parse_window(text: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' (local time) -> (start, end) in minutes of the day; end may be 24:00.

    A window whose end is before its start wraps midnight ("22:00-06:00").
    """
    m = _WINDOW.match(text)
    if m is None:
        raise ValueError(f"window {text!r} is not 'HH:MM-HH:MM'")
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end > 24 * 60:
        raise ValueError(f"window {text!r} ends after 24:00")
    if start == end:
        raise ValueError(f"window {text!r} is empty")
    return start, end


class GridServiceSection(Strict):
    """Payments from a grid operator or aggregator for the miners' flexibility.

    availability = offered kW x hours inside the windows x rate;
    activation = energy curtailed (or absorbed) on request x rate, measured against the
    miners' average power over `baseline_s` before the request started.
    """

    offered_kw: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Flexible power offered; default: the miners' capacity"
    )
    availability_rate_per_kw_h: Annotated[Decimal, Field(ge=0, strict=False)] = Field(
        default=Decimal("0"), description="Paid per kW offered per hour (site currency)"
    )
    activation_rate_per_kwh: Annotated[Decimal, Field(ge=0, strict=False)] = Field(
        default=Decimal("0"), description="Paid per kWh curtailed or absorbed on request"
    )
    windows: list[str] = Field(
        default_factory=list,
        description="Local-time availability windows 'HH:MM-HH:MM'; empty = all day",
    )
    baseline_s: Annotated[int, Field(ge=60, le=86_400)] = Field(
        default=900, description="Activation baseline: mean miner power over this long before"
    )

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        for w in v:
            parse_window(w)
        return v


class LedgerSection(Strict):
    """Where and how the revenue ledger is kept."""

    enabled: bool = True
    data_dir: str = Field(
        default="/var/lib/hearth", description="The default SQLite file lives here"
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...); "
        "default: sqlite:///<data_dir>/ledger.sqlite3",
    )
    interval_min: Annotated[int, Field(ge=1, le=60)] = Field(
        default=15, description="Accounting interval, aligned to the local clock; divides 60"
    )
    flush_interval_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=300, description="Write at most this often (one transaction per flush)"
    )
    telemetry_step_s: Annotated[int, Field(ge=0, le=3600)] = Field(
        default=60, description="Telemetry history resolution; 0 = keep no telemetry history"
    )
    telemetry_retention_days: Annotated[int, Field(ge=0)] = Field(
        default=400, description="Telemetry older than this is pruned; 0 = keep forever "
        "(intervals are always kept)"
    )
    battery_energy_price_per_kwh: Annotated[Decimal, Field(ge=0, strict=False)] | None = Field(
        default=None,
        description="What a kWh the miners take from the battery costs; default: the "
        "interval's export price (the PV that charged it could have been sold)",
    )
    grid_service: GridServiceSection | None = None

    @field_validator("interval_min")
    @classmethod
    def _divides_hour(cls, v: int) -> int:
        if 60 % v:
            raise ValueError("must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60) so "
                             "intervals align to the clock hour")
        return v

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in URL_SCHEMES:
            raise ValueError(f"unsupported database URL scheme {scheme!r}; use one of "
                             f"{', '.join(URL_SCHEMES)}")
        return v

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not PurePosixPath(v).is_absolute():
            raise ValueError("must be an absolute path")
        return v

    @model_validator(mode="after")
    def _telemetry_divides_interval(self) -> Self:
        step = self.telemetry_step_s
        if step and (self.interval_min * 60) % step:
            raise ValueError(f"telemetry_step_s ({step}) must divide the interval "
                             f"({self.interval_min * 60} s)")
        return self

    @property
    def interval_s(self) -> int:
        return self.interval_min * 60

    @property
    def url(self) -> str:
        """The database URL in use (the explicit one, or SQLite under data_dir)."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{PurePosixPath(self.data_dir) / 'ledger.sqlite3'}"
