"""The ledger of a simulation: `hearth sim --ledger URL` writes it through the same writer
the live controller uses, so a simulated year can be reported like a real one.

Each timeline row is one sample. Prices come from the trace (or a `Tariff` given
instead); Bitcoin terms from the trace's `hashvalue_sats_per_th_day`, `btc_price` and
`hashprice` columns where it has them, resolved as the controller does
(`economics.hashprice.RowTerms`), else from the site's `[bitcoin]` section; a row with a
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

from controller.config.models import SiteConfig
from controller.economics.hashprice import RowTerms
from controller.economics.money import dec
from controller.economics.tariffs import Tariff
from controller.ledger.accumulate import Sample
from controller.ledger.writer import LedgerWriter, economics_from_site, site_info
from controller.sim.runner import SimResult
from controller.sim.stream import Block

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


class _Terms:
    """Decimal prices and Bitcoin terms of trace values, cached (a year has few distinct)."""

    def __init__(self, result_cfg: SiteConfig) -> None:
        self.terms = RowTerms(result_cfg.bitcoin)
        self._prices: dict[float, Decimal] = {}

    def price(self, x: float) -> Decimal:
        d = self._prices.get(x)
        if d is None:
            d = self._prices[x] = dec(x)
        return d


_NAMES = ("pv_w", "load_w", "grid_w", "battery_w", "miner_w", "miner_from_pv_w",
          "miner_from_battery_w", "miner_from_grid_w", "heat_to_tank_w", "heat_from_tank_w",
          "backup_heat_w", "soc_pct", "tank_c", "import_price", "export_price")


def _block_samples(b: Block, cache: _Terms, tariff: Tariff | None, start: int = 0
                   ) -> Iterator[Sample]:
    """One `Sample` per row of the block, from its row `start`."""
    c, tr = b.columns, b.trace
    dt = float(tr.step_s)
    cols = [c[k][start:].tolist() for k in _NAMES]
    th = (c["hashrate_ths"][start:] * dt).tolist()
    hps = tr.hashprice[start:].tolist()
    hvs = tr.hashvalue_sats_per_th_day[start:].tolist()
    btcs = tr.btc_price[start:].tolist()
    dr = np.isfinite(tr.dr_limit_w[start:]).tolist()
    price, terms = cache.price, cache.terms
    for i, t in enumerate(tr.time_s[start:].tolist()):
        (pv, load, grid, bat, miner, fpv, fbat, fgrid, hin, hout, backup, soc, tank, p_imp,
         p_exp) = (col[i] for col in cols)
        if tariff is None:
            imp, exp = price(p_imp), price(p_exp)
        else:
            imp, exp = tariff.prices_at(t)
        yield Sample(t, dt, pv, load, grid, bat, miner, fpv, fbat, fgrid, hin, hout, backup,
                     th[i], imp, exp, terms(hvs[i], btcs[i], hps[i]), "reduce" if dr[i] else "",
                     soc, tank)


def sim_samples(result: SimResult, tariff: Tariff | None = None,
                start: int = 0) -> Iterator[Sample]:
    """One `Sample` per timeline row of a kept result, from row `start` (lazily)."""
    return _block_samples(result.as_block(), _Terms(result.cfg), tariff, start)


class SimLedgerSink:
    """A simulation consumer (`simulate(..., consumers=[...])`) that writes the ledger as
    the blocks come: a streamed year is accounted without keeping it in memory.

    Resumes like `write_sim_ledger`: rows the database already has are not generated."""

    def __init__(self, cfg: SiteConfig, url: str, *, flush_every_s: float = SIM_FLUSH_S,
                 tariff: Tariff | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.url, self.flush_every_s = cfg, url, flush_every_s
        self.tariff, self.clock = tariff, clock
        self.writer: LedgerWriter | None = None
        self.cache = _Terms(cfg)
        self.samples = 0
        self.skipped = 0
        self.first_s = math.nan
        self.end_s = math.nan

    def _open(self, step_s: float) -> LedgerWriter:
        cfg = self.cfg
        grid = cfg.ledger.grid_service
        info = site_info(cfg)
        step = int(step_s)
        if step > info.telemetry_step_s and step == step_s and info.interval_s % step == 0:
            # telemetry finer than the trace would only repeat its rows
            info = dataclasses.replace(info, telemetry_step_s=step)
        return LedgerWriter.open(
            self.url, info, economics_from_site(cfg), flush_interval_s=self.flush_every_s,
            retention_days=0, baseline_s=grid.baseline_s if grid is not None else 900,
            source="sim", clock=self.clock)

    def block(self, b: Block) -> None:
        tr = b.trace
        if self.writer is None:
            self.writer = self._open(tr.step_s)
            self.first_s = tr.start_s
        writer = self.writer
        self.end_s = tr.end_s
        done = writer.resume_after_s
        start = 0 if done is None else int(np.searchsorted(tr.time_s + tr.step_s, done + 1e-6,
                                                           side="right"))
        self.skipped += start
        for s in _block_samples(b, self.cache, self.tariff, start):
            writer.add(s)
            self.samples += 1

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close(finalize=True)
            finally:
                self.writer.engine.dispose()

    def abort(self) -> None:
        """The run failed: what was flushed stays (a rerun resumes after it)."""
        if self.writer is not None:
            self.writer.engine.dispose()

    def result(self) -> SimLedgerResult:
        skipped = self.skipped + (self.writer.skipped_samples if self.writer else 0)
        return SimLedgerResult(self.url, self.cfg.site.id, self.samples, skipped,
                               self.writer.flushes if self.writer else 0, self.first_s,
                               self.end_s)


def write_sim_ledger(result: SimResult, url: str, *, flush_every_s: float = SIM_FLUSH_S,
                     tariff: Tariff | None = None,
                     clock: Callable[[], float] = time.time) -> SimLedgerResult:
    """Write (or complete) the ledger of a kept simulation into the database at `url`.

    Rows the database already has are not even generated again (a killed year-long run
    resumes where its last flush ended).
    """
    sink = SimLedgerSink(result.cfg, url, flush_every_s=flush_every_s, tariff=tariff,
                         clock=clock)
    sink.block(result.as_block())
    sink.close()
    return sink.result()
