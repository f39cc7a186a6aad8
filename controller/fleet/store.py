"""The fleet's PostgreSQL schema and the writes `hearth fleet ingest` makes.

`fleet_interval` and `fleet_telemetry` carry the ledger's own columns (copied from the
SQLModel tables in controller/ledger/tables.py, so the two can never drift) with the site's
id in place of the site database's row keys. Both are partitioned by month on `start_s`
(partitions made on demand) and keyed (site_id, start_s[, rev]): an insert of a row that is
already there does nothing, so a redelivered message never counts twice. `fleet_site` holds
each site's latest state (JSON per state topic), `fleet_refused` every refused message with
the field and the reason, `fleet_dr_event` the fleet DR requests and what they delivered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from controller.fleet.rows import INTERVAL_COLUMNS, TELEMETRY_COLUMNS

metadata = MetaData()
_LOCK_KEY = 0x4845415254480F  # advisory lock: schema and partition changes, one at a time


def _copy(cols: dict[str, Column[Any]]) -> list[Column[Any]]:
    out = []
    for c in cols.values():
        cc = c._copy()
        cc.primary_key = False
        cc.index = None
        cc.unique = None
        out.append(cc)
    return out


fleet_interval = Table(
    "fleet_interval", metadata,
    Column("site_id", String(64), nullable=False),
    *_copy(INTERVAL_COLUMNS),
    Column("ingested_at_s", BigInteger, nullable=False),
    PrimaryKeyConstraint("site_id", "start_s", "rev", name="pk_fleet_interval"),
    postgresql_partition_by="RANGE (start_s)",
)
fleet_telemetry = Table(
    "fleet_telemetry", metadata,
    Column("site_id", String(64), nullable=False),
    *_copy(TELEMETRY_COLUMNS),
    PrimaryKeyConstraint("site_id", "start_s", name="pk_fleet_telemetry"),
    postgresql_partition_by="RANGE (start_s)",
)
fleet_site = Table(
    "fleet_site", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("info", JSONB, nullable=True),             # fleet/info: capacity, links
    Column("state", JSONB, nullable=False),           # state/<topic> -> payload + "_at_s"
    Column("availability", String(16), nullable=True),  # the site's LWT: online/offline
    Column("bridge", String(8), nullable=True),       # the bridge's own state: 1/0
    Column("last_seen_s", Float, nullable=True),
)
fleet_refused = Table(
    "fleet_refused", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at_s", Float, nullable=False),
    Column("site_id", String(64), nullable=True),
    Column("topic", Text, nullable=False),
    Column("field", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
)
fleet_dr_event = Table(
    "fleet_dr_event", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("requested_w", Float, nullable=False),
    Column("start_s", Float, nullable=False),
    Column("end_s", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("delivered_w", Float, nullable=True),
    Column("updated_s", Float, nullable=False),
    Column("sites", JSONB, nullable=False),
)
PARTITIONED = (fleet_interval, fleet_telemetry)


def month_bounds(start_s: int) -> tuple[str, int, int]:
    """The UTC calendar month holding `start_s`: (suffix YYYYMM, start, end) in epoch s."""
    d = datetime.fromtimestamp(start_s, UTC)
    lo = datetime(d.year, d.month, 1, tzinfo=UTC)
    hi = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
    return f"{d.year:04d}{d.month:02d}", int(lo.timestamp()), int(hi.timestamp())


def make_fleet_engine(url: str) -> Engine:
    if not url.startswith("postgresql"):
        raise ValueError(f"{url}: the fleet database is PostgreSQL (postgresql+psycopg://...)")
    return create_engine(url, pool_pre_ping=True)


def ensure_schema(engine: Engine) -> None:
    """Create the tables if absent (under an advisory lock: several processes may start)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        metadata.create_all(conn)


@dataclass
class Partitions:
    """Month partitions known to exist; made on first use, once per process."""

    known: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure(self, conn: Any, table: Table, start_values: Iterable[int]) -> None:
        for suffix, lo, hi in sorted({month_bounds(s) for s in start_values}):
            name = f"{table.name}_{suffix}"
            with self.lock:
                if name in self.known:
                    continue
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            conn.execute(text(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table.name}" '
                f"FOR VALUES FROM ({lo}) TO ({hi})"))
            with self.lock:
                self.known.add(name)


def insert_rows(conn: Any, table: Table, rows: Sequence[dict[str, Any]],
                parts: Partitions) -> int:
    """Insert rows; one already there (same key) is left as it is. Returns rows added."""
    if not rows:
        return 0
    parts.ensure(conn, table, (int(r["start_s"]) for r in rows))
    keys = [c.name for c in table.primary_key.columns]
    # executemany: SQLAlchemy batches it into multi-row INSERTs with one cached compile
    # ("insertmanyvalues"); RETURNING yields only the rows that were really added.
    stmt = insert(table).on_conflict_do_nothing(index_elements=keys) \
        .returning(table.c.start_s)
    return len(conn.execute(stmt, list(rows)).all())


_SITE_UPSERT = text("""
INSERT INTO fleet_site AS f (site_id, info, state, availability, bridge, last_seen_s)
VALUES (:site_id, CAST(:info AS jsonb), CAST(:state AS jsonb), :availability, :bridge,
        :last_seen_s)
ON CONFLICT (site_id) DO UPDATE SET
  info = COALESCE(EXCLUDED.info, f.info),
  state = (f.state - CAST(:removed AS text[])) || EXCLUDED.state,
  availability = COALESCE(EXCLUDED.availability, f.availability),
  bridge = COALESCE(EXCLUDED.bridge, f.bridge),
  last_seen_s = GREATEST(f.last_seen_s, EXCLUDED.last_seen_s)
""")


@dataclass
class SiteUpdate:
    """What one batch learned about one site (later messages win)."""

    site_id: str
    info: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    availability: str | None = None
    bridge: str | None = None
    last_seen_s: float | None = None

    def params(self) -> dict[str, Any]:
        return {"site_id": self.site_id,
                "info": None if self.info is None else json.dumps(self.info),
                "state": json.dumps(self.state), "removed": sorted(self.removed),
                "availability": self.availability, "bridge": self.bridge,
                "last_seen_s": self.last_seen_s}


def upsert_sites(conn: Any, updates: Iterable[SiteUpdate]) -> None:
    params = [u.params() for u in updates]
    if params:
        conn.execute(_SITE_UPSERT, params)


def record_refused(conn: Any, refused: Sequence[dict[str, Any]]) -> None:
    if refused:
        conn.execute(fleet_refused.insert(), list(refused))


# -- reads for the page ---------------------------------------------------------------------

_LEGS = ("btc_value", "heat_value", "availability_pay", "activation_pay", "grid_cost",
         "forgone_export", "battery_cost", "net")


def money_by_day(conn: Any, start_s: int, end_s: int) -> list[dict[str, Any]]:
    """Per site and UTC day: money by leg over the current rows (the highest rev)."""
    sums = ", ".join(f"SUM({c}) AS {c}" for c in (*_LEGS, "expected_msat", "miner_kwh"))
    sql = text(f"""
      SELECT site_id, to_char(to_timestamp(start_s) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
             COUNT(*) AS intervals, {sums}
      FROM (SELECT DISTINCT ON (site_id, start_s) * FROM fleet_interval
            WHERE start_s >= :lo AND start_s < :hi
            ORDER BY site_id, start_s, rev DESC) cur
      GROUP BY site_id, day ORDER BY day, site_id""")
    out = []
    for r in conn.execute(sql, {"lo": start_s, "hi": end_s}).mappings():
        row: dict[str, Any] = {"site_id": r["site_id"], "day": r["day"],
                               "intervals": int(r["intervals"])}
        for c in _LEGS:
            row[c] = str(Decimal(int(r[c] or 0)).scaleb(-6))
        row["miner_kwh"] = str(Decimal(int(r["miner_kwh"] or 0)).scaleb(-6))
        row["expected_sats"] = int(r["expected_msat"] or 0) // 1000
        out.append(row)
    return out


def sites(conn: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(fleet_site.select().order_by(
        fleet_site.c.site_id)).mappings()]


def recent_refused(conn: Any, limit: int = 50) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(fleet_refused.select().order_by(
        fleet_refused.c.id.desc()).limit(limit)).mappings()]


def dr_events(conn: Any, limit: int = 10) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(fleet_dr_event.select().order_by(
        fleet_dr_event.c.start_s.desc()).limit(limit)).mappings()]


def save_dr_event(conn: Any, row: dict[str, Any]) -> None:
    stmt = insert(fleet_dr_event).values(**row)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["event_id"],
        set_={k: stmt.excluded[k] for k in row if k != "event_id"}))
