"""The demand-response events (source:event_id) in force during each interval, so a
grid-service payment can be traced to the aggregator's event.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild): the append-only triggers stay in place, and
    # existing rows read as "no event".
    op.add_column("ledger_interval", sa.Column("dr_events", sa.String(length=500),
                                               nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("ledger_interval", "dr_events")
