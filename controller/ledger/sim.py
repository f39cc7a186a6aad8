"""The ledger of a simulation: `hearth sim --ledger URL` writes it through the same writer
the live controller uses, so a simulated year can be reported like a real one.

Each timeline row is one sample. Prices come from the trace (or a `Tariff` given
instead); Bitcoin terms from the trace's `hashprice` column when it has one (with the
site's BTC price and pool fee), else from the site's `[bitcoin]` section; a row with a
`dr_limit_w` is under a "reduce" request.

Writing resumes: rows the database already has are skipped, so a run that was killed can
simply be run again, and ends with exactly the ledger an uninterrupted run writes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from controller.economics.hashprice import BtcTerms, GivenHashprice, network_terms
from controller.economics.money import dec
from controller.economics.tariffs import Tariff
from controller.ledger.accumulate import Sample
from controller.ledger.writer import LedgerWriter, economics_from_site, site_info
from controller.sim.runner import SimResult

SIM_FLUSH_S = 86_400.0
"""A simulation writes once per simulated day by default (it has no SD card to spare,
and a killed run is simply resumed)."""


@dataclass(frozen=True)
class SimLedgerResult:
    url: str
    site_id: str
    samples: int
    skipped: int
    flushes: int
    first_s: float
    end_s: float


def sim_samples(result: SimResult, tariff: Tariff | None = None,
                start: int = 0) -> Iterator[Sample]:
    """One `Sample` per timeline row, from row `start` (lazily: resuming is cheap)."""
    c = result.columns
    tr = result.trace
    dt = float(tr.step_s)
    b = result.cfg.bitcoin
    base = network_terms(b.network_difficulty, b.block_subsidy_btc, b.fees_per_block_btc,
                         b.btc_price, b.pool_fee_pct)
    fee = dec(b.pool_fee_pct)
    terms_cache: dict[float, BtcTerms] = {}
    price_cache: dict[float, Decimal] = {}

    def price(x: float) -> Decimal:
        d = price_cache.get(x)
        if d is None:
            d = price_cache[x] = dec(x)
        return d

    def terms(hp: float) -> BtcTerms:
        if math.isnan(hp):
            return base
        t = terms_cache.get(hp)
        if t is None:
            t = terms_cache[hp] = GivenHashprice(dec(hp), b.btc_price, fee)
        return t

    names = ("pv_w", "load_w", "grid_w", "battery_w", "miner_w", "miner_from_pv_w",
             "miner_from_battery_w", "miner_from_grid_w", "heat_to_tank_w", "heat_from_tank_w",
             "backup_heat_w", "soc_pct", "tank_c", "import_price", "export_price")
    cols = [c[k][start:] for k in names]
    th = c["hashrate_ths"][start:] * dt
    hps = tr.hashprice[start:]
    dr = np.isfinite(tr.dr_limit_w[start:])
    for i, t in enumerate(tr.time_s[start:].tolist()):
        (pv, load, grid, bat, miner, fpv, fbat, fgrid, hin, hout, backup, soc, tank, p_imp,
         p_exp) = (float(col[i]) for col in cols)
        if tariff is None:
            imp, exp = price(p_imp), price(p_exp)
        else:
            imp, exp = tariff.prices_at(t)
        yield Sample(t, dt, pv, load, grid, bat, miner, fpv, fbat, fgrid, hin, hout, backup,
                     float(th[i]), imp, exp, terms(float(hps[i])),
                     "reduce" if dr[i] else "", soc, tank)


def write_sim_ledger(result: SimResult, url: str, *, flush_every_s: float = SIM_FLUSH_S,
                     tariff: Tariff | None = None,
                     clock: Callable[[], float] = time.time) -> SimLedgerResult:
    """Write (or complete) the ledger of a simulation into the database at `url`.

    Rows the database already has are not even generated again (a killed year-long run
    resumes where its last flush ended).
    """
    cfg = result.cfg
    grid = cfg.ledger.grid_service
    info = site_info(cfg)
    step = int(result.trace.step_s)
    if step > info.telemetry_step_s and step == result.trace.step_s and \
            info.interval_s % step == 0:
        # telemetry finer than the trace would only repeat its rows
        info = dataclasses.replace(info, telemetry_step_s=step)
    writer = LedgerWriter.open(
        url, info, economics_from_site(cfg), flush_interval_s=flush_every_s,
        retention_days=0, baseline_s=grid.baseline_s if grid is not None else 900,
        source="sim", clock=clock)
    tr = result.trace
    done = writer.resume_after_s
    start = 0 if done is None else int(np.searchsorted(tr.time_s + tr.step_s, done + 1e-6,
                                                       side="right"))
    n = 0
    try:
        for s in sim_samples(result, tariff, start):
            writer.add(s)
            n += 1
        writer.close(finalize=True)
    finally:
        writer.engine.dispose()
    return SimLedgerResult(url, cfg.site.id, n, start + writer.skipped_samples,
                           writer.flushes, tr.start_s, tr.end_s)
