"""Accounting core: sites, append-only intervals, the writer's checkpoint.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ENERGY = ("pv", "load", "import", "export", "miner", "miner_from_pv", "miner_from_battery",
           "miner_from_grid", "forgone_export", "heat_to_tank", "heat_delivered",
           "backup_heat", "dr_curtailed", "dr_absorbed", "flex_offered")
_MONEY = ("import_cost", "export_revenue", "grid_cost", "forgone_export", "battery_cost",
          "btc_value", "heat_value", "availability_pay", "activation_pay", "net")
APPEND_ONLY = "ledger_interval is append-only: add a correction row instead"


def _fixed(name: str, nullable: bool = False) -> sa.Column[int]:
    """A FixedDecimal column: an integer count of 1e-6 (1e-3 for covered_s)."""
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ledger_site",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("telemetry_step_s", sa.Integer(), nullable=False),
        sa.Column("created_at_s", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("site_id", name="uq_site_id"),
    )
    op.create_table(
        "ledger_interval",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.Integer(), sa.ForeignKey("ledger_site.id"), nullable=False),
        sa.Column("start_s", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        _fixed("covered_s"),
        sa.Column("rev", sa.Integer(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), sa.ForeignKey("ledger_interval.id"),
                  nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("recorded_at_s", sa.BigInteger(), nullable=False),
        *[_fixed(f"{e}_kwh") for e in _ENERGY],
        _fixed("terahashes"),
        sa.Column("expected_msat", sa.BigInteger(), nullable=False),
        sa.Column("btc_terms", sa.String(length=200), nullable=False),
        _fixed("import_price_avg", nullable=True),
        _fixed("export_price_avg", nullable=True),
        *[_fixed(m) for m in _MONEY],
        _fixed("value_per_kwh", nullable=True),
        sa.UniqueConstraint("site", "start_s", "rev", name="uq_interval_rev"),
        sa.UniqueConstraint("supersedes_id", name="uq_interval_supersedes"),
    )
    op.create_table(
        "ledger_state",
        sa.Column("site", sa.Integer(), sa.ForeignKey("ledger_site.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("last_end_s", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at_s", sa.BigInteger(), nullable=False),
    )
    append_only("ledger_interval")


def append_only(table: str) -> None:
    """Database triggers that refuse UPDATE and DELETE on `table`."""
    msg = APPEND_ONLY.replace("ledger_interval", table)
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{msg}'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{msg}'); END"
            )


def drop_append_only(table: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION {table}_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{what}")


def downgrade() -> None:
    drop_append_only("ledger_interval")
    op.drop_table("ledger_state")
    op.drop_table("ledger_interval")
    op.drop_table("ledger_site")
