"""Alembic environment, driven programmatically by controller.ledger.db.migrate().

The caller passes an open connection (inside its transaction) as
`config.attributes["connection"]`; no alembic.ini, no engine built here. Batch mode lets
future migrations alter SQLite tables (which has only a limited ALTER TABLE).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from controller.ledger.tables import LedgerInterval  # noqa: F401  (registers the tables)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through controller.ledger.db.migrate()")
context.configure(connection=connection, target_metadata=SQLModel.metadata,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
