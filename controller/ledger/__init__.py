"""The revenue ledger: fiat + BTC + heat per clock-aligned interval, exact, in SQL.

- `accumulate`: samples -> exact interval figures (the accounting rules);
- `writer`: batched, crash-safe writing with a checkpoint (live controller and sim);
- `sim`: `write_sim_ledger(result, url)` for `hearth sim --ledger URL`;
- `query`: reports, totals, CSV export, payouts, corrections (CLI, HMI, MQTT bridge);
- `db` + `migrations`: SQLite (WAL) or PostgreSQL by URL, schema by Alembic.
"""

from controller.ledger.accumulate import Sample, interval_start, split_miner_power
from controller.ledger.query import Ledger, Report, Totals, render_report
from controller.ledger.writer import LedgerConflict, LedgerWriter, SiteInfo

__all__ = [
    "Ledger",
    "LedgerConflict",
    "LedgerWriter",
    "Report",
    "Sample",
    "SiteInfo",
    "Totals",
    "interval_start",
    "render_report",
    "split_miner_power",
]
