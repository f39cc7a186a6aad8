"""Ledger settings of a site (database URL, accounting interval)."""

from __future__ import annotations

from controller.config.base import Strict


class LedgerSection(Strict):
    """Fields are added by the ledger (controller/ledger)."""

    interval_min: int = 15
