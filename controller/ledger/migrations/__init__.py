"""Alembic migrations of the ledger (run by controller.ledger.db.migrate)."""
