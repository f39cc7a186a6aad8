"""Telemetry history and imported pool payouts.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FLOAT_COLUMNS = ("duration_s", "pv_w", "load_w", "grid_w", "battery_w", "miner_w",
                  "heat_to_tank_w", "heat_from_tank_w", "hashrate_ths")


def upgrade() -> None:
    op.create_table(
        "ledger_telemetry",
        sa.Column("site", sa.Integer(), sa.ForeignKey("ledger_site.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("start_s", sa.BigInteger(), primary_key=True, autoincrement=False),
        *[sa.Column(c, sa.Float(), nullable=False) for c in _FLOAT_COLUMNS],
        sa.Column("soc_pct", sa.Float(), nullable=True),
        sa.Column("tank_c", sa.Float(), nullable=True),
        sa.Column("import_price", sa.Float(), nullable=False),
        sa.Column("export_price", sa.Float(), nullable=False),
    )
    op.create_table(
        "ledger_payout",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.Integer(), sa.ForeignKey("ledger_site.id"), nullable=False),
        sa.Column("time_s", sa.BigInteger(), nullable=False),
        sa.Column("sats", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("period_start_s", sa.BigInteger(), nullable=True),
        sa.Column("period_end_s", sa.BigInteger(), nullable=True),
        sa.Column("imported_at_s", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("site", "reference", name="uq_payout_ref"),
    )
    op.create_index("ix_ledger_payout_time_s", "ledger_payout", ["time_s"])


def downgrade() -> None:
    op.drop_index("ix_ledger_payout_time_s", table_name="ledger_payout")
    op.drop_table("ledger_payout")
    op.drop_table("ledger_telemetry")
