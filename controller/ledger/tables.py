"""SQLModel tables of the ledger. The schema itself is built by the Alembic migrations in
`migrations/versions`; a test checks that these models and the migrations agree.

Exact numbers are stored as scaled integers (`FixedDecimal`): SQLite has no decimal type
(its NUMERIC is a float), and integers sum exactly in SQL on both SQLite and PostgreSQL.
Times are UTC epoch seconds: unambiguous, compact, the same on both databases.

`ledger_interval` is append-only (database triggers refuse UPDATE and DELETE): a
correction is a new row with `rev` + 1 whose `supersedes_id` points at the row it
replaces; the current figures are the rows nobody supersedes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, Dialect, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class FixedDecimal(TypeDecorator[Decimal]):
    """Decimal <-> integer count of 10^-scale. A value with more digits is an error."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 6) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else Decimal(value)
        scaled = d.scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.scale)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def _dec(nullable: bool = False, scale: int = 6) -> Any:
    return Field(default=None if nullable else Decimal(0),
                 sa_column=Column(FixedDecimal(scale), nullable=nullable))


def _bigint(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None if nullable else 0,
                 sa_column=Column(BigInteger, nullable=nullable, index=index))


class LedgerSite(SQLModel, table=True):
    """One row per site: the settings the stored intervals were computed with."""

    __tablename__ = "ledger_site"
    __table_args__ = (UniqueConstraint("site_id", name="uq_site_id"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(max_length=64)
    currency: str = Field(max_length=3)
    timezone: str = Field(max_length=64)
    interval_s: int
    telemetry_step_s: int
    created_at_s: int = _bigint()


class LedgerInterval(SQLModel, table=True):
    """One accounting interval (kWh and currency to 1e-6, sats to the millisat)."""

    __tablename__ = "ledger_interval"
    # (site, start_s, rev) is unique and also the index the range queries use.
    __table_args__ = (
        UniqueConstraint("site", "start_s", "rev", name="uq_interval_rev"),
        UniqueConstraint("supersedes_id", name="uq_interval_supersedes"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site: int = Field(foreign_key="ledger_site.id")
    start_s: int = _bigint()
    duration_s: int
    covered_s: Decimal = _dec(scale=3)
    rev: int = 0
    supersedes_id: int | None = Field(default=None, foreign_key="ledger_interval.id")
    source: str = Field(default="live", max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    recorded_at_s: int = _bigint()

    pv_kwh: Decimal = _dec()
    load_kwh: Decimal = _dec()
    import_kwh: Decimal = _dec()
    export_kwh: Decimal = _dec()
    miner_kwh: Decimal = _dec()
    miner_from_pv_kwh: Decimal = _dec()
    miner_from_battery_kwh: Decimal = _dec()
    miner_from_grid_kwh: Decimal = _dec()
    forgone_export_kwh: Decimal = _dec()
    heat_to_tank_kwh: Decimal = _dec()
    heat_delivered_kwh: Decimal = _dec()
    backup_heat_kwh: Decimal = _dec()
    dr_curtailed_kwh: Decimal = _dec()
    dr_absorbed_kwh: Decimal = _dec()
    flex_offered_kwh: Decimal = _dec()
    dr_events: str = Field(default="", max_length=500)  # "source:event_id,..." in force

    terahashes: Decimal = _dec()
    expected_msat: int = _bigint()
    btc_terms: str = Field(default="", max_length=200)
    import_price_avg: Decimal | None = _dec(nullable=True)
    export_price_avg: Decimal | None = _dec(nullable=True)

    import_cost: Decimal = _dec()
    export_revenue: Decimal = _dec()
    grid_cost: Decimal = _dec()
    forgone_export: Decimal = _dec()
    battery_cost: Decimal = _dec()
    btc_value: Decimal = _dec()
    heat_value: Decimal = _dec()
    availability_pay: Decimal = _dec()
    activation_pay: Decimal = _dec()
    net: Decimal = _dec()
    value_per_kwh: Decimal | None = _dec(nullable=True)


class LedgerState(SQLModel, table=True):
    """The writer's checkpoint: the open interval and telemetry step, exactly, and the end
    of the last sample taken. Written in the same transaction as the rows it produced."""

    __tablename__ = "ledger_state"

    site: int = Field(foreign_key="ledger_site.id", primary_key=True,
                      sa_column_kwargs={"autoincrement": False})
    generation: int = 0
    last_end_s: float
    state: str = Field(sa_column=Column(Text, nullable=False))
    updated_at_s: int = _bigint()


class LedgerTelemetry(SQLModel, table=True):
    """Telemetry history at `telemetry_step_s` (averages; soc and tank at step end)."""

    __tablename__ = "ledger_telemetry"

    site: int = Field(foreign_key="ledger_site.id", primary_key=True,
                      sa_column_kwargs={"autoincrement": False})
    start_s: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    duration_s: float
    pv_w: float
    load_w: float
    grid_w: float
    battery_w: float
    miner_w: float
    heat_to_tank_w: float
    heat_from_tank_w: float
    hashrate_ths: float
    soc_pct: float | None = None
    tank_c: float | None = None
    import_price: float
    export_price: float


class LedgerPayout(SQLModel, table=True):
    """A pool payout imported for comparison with the expected sats (append-only)."""

    __tablename__ = "ledger_payout"
    __table_args__ = (UniqueConstraint("site", "reference", name="uq_payout_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    site: int = Field(foreign_key="ledger_site.id")
    time_s: int = _bigint(index=True)
    sats: int = _bigint()
    reference: str = Field(max_length=200)
    period_start_s: int | None = _bigint(nullable=True)
    period_end_s: int | None = _bigint(nullable=True)
    imported_at_s: int = _bigint()


INTERVAL_VALUE_COLUMNS = tuple(
    c for c in LedgerInterval.model_fields
    if c not in ("id", "site", "rev", "supersedes_id", "source", "reason", "recorded_at_s")
)
"""The columns that carry figures (compared in tests, exported in CSV)."""
__all__ = ["FixedDecimal", "LedgerInterval", "LedgerPayout", "LedgerSite",
           "LedgerState", "LedgerTelemetry"]
