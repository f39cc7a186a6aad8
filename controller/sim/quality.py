"""Control-quality figures of a simulation, one definition for `hearth compare`, the
benches and the tests (issue 15).

- physical limit: per step, the most of the surplus the miners' ranges can absorb, each
  miner off or within [min, max] (a subset-sum over ranges: with k miners, the best of the
  2^k subsets whose summed minimum fits under the surplus);
- capture: miner energy taken from surplus / that limit, per step capped by the limit;
- caused import: miner energy the grid supplied / miner energy;
- costly import: the same, counted only in steps where importing costs more than the
  best miner earns with a kWh (import price above the mining value): what a controller
  must never do; `costly_import_decided` leaves out the floor no decision can avoid (the
  minimum draw of miners whose firmware cannot pause, e.g. AxeOS, held there at night);
- starts per miner per day, and the worst miner's.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.config.models import MinerConfig, SiteConfig
from controller.miners.factory import held_at_min_w
from controller.plan.value import trace_terms
from controller.sim.runner import SimResult
from controller.sim.stream import Block

FloatArray = npt.NDArray[np.float64]


def absorbable_w(surplus_w: FloatArray, miners: list[MinerConfig]) -> FloatArray:
    """Per step: the most of `surplus_w` the miners can take, each off or in [min, max]."""
    s = np.maximum(np.asarray(surplus_w, dtype=np.float64), 0.0)
    best = np.zeros_like(s)
    ranges = [(m.min_power_w, m.max_power_w) for m in miners]
    for k in range(1, len(ranges) + 1):
        for subset in combinations(ranges, k):
            lo = sum(r[0] for r in subset)
            hi = sum(r[1] for r in subset)
            cand = np.where(s >= lo, np.minimum(s, hi), 0.0)
            np.maximum(best, cand, out=best)
    return best


class QualitySums:
    """The running sums behind `quality`, fed block by block (a simulation consumer:
    `simulate(..., consumers=[q])` on a trace of any length)."""

    def __init__(self, cfg: SiteConfig, step_s: float) -> None:
        self.cfg, self.step_s = cfg, step_s
        self.miners = list(cfg.miners)
        self.rows = 0
        self.limit = self.from_surplus = self.miner = self.grid = 0.0
        self.costly_miner = self.costly_grid = self.costly_decided = 0.0
        # Import no decision can avoid: the minimum of miners that cannot pause.
        self.held_w = held_at_min_w(cfg.miners)
        self.best_j_per_th = min(m.best_j_per_th for m in cfg.miners)

    def block(self, b: Block) -> None:
        c = b.columns
        limit = absorbable_w(c["surplus_w"], self.miners)
        self.limit += float(limit.sum())
        self.from_surplus += float(
            np.minimum(np.minimum(c["miner_from_pv_w"], c["surplus_w"]), limit).sum())
        self.miner += float(np.sum(c["miner_w"]))
        grid = c["miner_from_grid_w"]
        self.grid += float(grid.sum())
        # What a kWh earns through the best miner, at the step's bitcoin terms.
        best_value = trace_terms(self.cfg, b.trace).value_per_kwh(self.best_j_per_th)
        costly = c["import_price"] > best_value
        self.costly_miner += float(np.sum(c["miner_w"][costly]))
        self.costly_grid += float(np.sum(grid[costly]))
        decided = grid - np.minimum(grid, self.held_w)
        self.costly_decided += float(np.sum(decided[costly]))
        self.rows += len(b)

    def close(self) -> None:
        pass

    def figures(self, starts: dict[str, int]) -> dict[str, Any]:
        dt = self.step_s
        kwh = dt / 3.6e6
        miner_kwh = self.miner * kwh
        days = self.rows * dt / 86_400.0
        per_day = {k: v / days for k, v in starts.items()} if days > 0 else {}
        return {
            "limit_kwh": self.limit * kwh,
            "captured_kwh": self.from_surplus * kwh,
            "capture_of_limit": self.from_surplus / self.limit if self.limit > 0 else None,
            "caused_import_kwh": self.grid * kwh,
            "caused_import": self.grid * kwh / miner_kwh if miner_kwh > 0 else 0.0,
            "costly_import": self.costly_grid / self.costly_miner
            if self.costly_miner > 0 else 0.0,
            "costly_import_decided": self.costly_decided / self.costly_miner
            if self.costly_miner > 0 else 0.0,
            "held_at_min_w": self.held_w,
            "starts_per_day": per_day,
            "max_starts_per_day": max(per_day.values(), default=0.0),
        }


def quality(r: SimResult) -> dict[str, Any]:
    """The figures of a run that kept its columns (a streamed run: `QualitySums`)."""
    q = QualitySums(r.cfg, r.step_s)
    q.block(r.as_block())
    return q.figures(r.starts)
