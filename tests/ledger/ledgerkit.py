"""Helpers for the ledger tests: a database per test (SQLite file, or a PostgreSQL schema
when HEARTH_TEST_PG_URL is set), samples, and a small site.

PostgreSQL: every test gets its own schema (`hearth_t_<random>`), selected through the
URL (`options=-csearch_path=...`, passed to libpq), and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from controller.economics.hashprice import BtcTerms, NetworkTerms
from controller.economics.heat import HeatValuation
from controller.ledger.accumulate import LedgerEconomics, Sample, split_miner_power
from controller.ledger.writer import SiteInfo

PG_ENV = "HEARTH_TEST_PG_URL"
PG_URL = os.environ.get(PG_ENV)
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not PG_URL, reason=f"{PG_ENV} not set: the PostgreSQL run of the ledger tests is "
                           "skipped (set it to e.g. postgresql+psycopg://postgres@127.0.0.1/test)")),
]
"""Parametrize a `url` fixture with these to run a test on both databases."""


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL of `kind`; cleaned up afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    assert PG_URL is not None
    schema = f"hearth_t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


TERMS = NetworkTerms(Decimal("80000000000000"), 325_000_000, Decimal("60000"), Decimal(0))
SITE = SiteInfo("test-site", "EUR", "UTC", 900, 60)


def economics(export_limit_w: float = 10_000, **kw: Any) -> LedgerEconomics:
    heat = kw.pop("heat", HeatValuation("gas_boiler", Decimal("0.9"), Decimal("0.10")))
    return LedgerEconomics("EUR", Decimal(repr(export_limit_w)), heat, **kw)


def sample(t: float, d: float = 60.0, *, pv: float = 0.0, load: float = 500.0,
           miner: float = 0.0, battery: float = 0.0, ths: float | None = None,
           heat_out: float = 0.0, imp: str = "0.30", exp: str = "0.08",
           btc: BtcTerms = TERMS, dr: str = "", heat_in: float | None = None) -> Sample:
    """A balanced sample: grid = load + miner + battery - pv; miner split by the sim rule;
    hashrate 10 TH/s per kW unless `ths` is given."""
    grid = load + miner + battery - pv
    fpv, fbat, fgrid = split_miner_power(pv, load, miner, battery)
    rate = miner / 100.0 if ths is None else ths
    return Sample(t, d, pv, load, grid, battery, miner, fpv, fbat, fgrid,
                  miner * 0.95 if heat_in is None else heat_in, heat_out, 0.0, rate * d,
                  Decimal(imp), Decimal(exp), btc, dr)  # type: ignore[arg-type]


def day_samples(day_start: float, step: float = 60.0) -> list[Sample]:
    """A varied day: PV bell, miner on PV 9-15 h, on grid 20-21 h, battery evening."""
    out = []
    n = int(86_400 / step)
    for i in range(n):
        t = day_start + i * step
        h = (i * step) / 3600
        pv = max(0.0, 4000.0 * (1 - ((h - 12) / 5) ** 2)) if 7 <= h <= 17 else 0.0
        miner = 1200.0 + 7.0 * (i % 11) if 9 <= h < 15 else (900.0 if 20 <= h < 21 else 0.0)
        battery = -300.0 if 18 <= h < 22 else 0.0
        out.append(sample(t, step, pv=pv, load=450.0 + 3.0 * (i % 7), miner=miner,
                          battery=battery, heat_out=700.0 if 6 <= h < 22 else 0.0,
                          imp="0.2875" if h < 12 else "0.3125", exp="0.071"))
    return out
