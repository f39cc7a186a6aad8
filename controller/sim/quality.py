"""Control-quality figures of a simulation, one definition for `hearth compare`, the
benches and the tests (issue 15).

- physical limit: per step, the most of the surplus the miners' ranges can absorb, each
  miner off or within [min, max] (a subset-sum over ranges: with k miners, the best of the
  2^k subsets whose summed minimum fits under the surplus);
- capture: miner energy taken from surplus / that limit, per step capped by the limit;
- caused import: miner energy the grid supplied / miner energy;
- costly import: the same, counted only in steps where importing costs more than the
  best miner earns with a kWh (import price above the mining value): what a controller
  must never do;
- starts per miner per day, and the worst miner's.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.config.models import MinerConfig, SiteConfig
from controller.plan.value import value_per_th
from controller.sim.runner import SimResult

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


def best_value_per_kwh(cfg: SiteConfig, hashprice: FloatArray) -> FloatArray:
    """Per step: what a kWh earns through the site's most efficient miner (after pool
    fee, at the trace's hashprice where given)."""
    best_j_per_th = min(m.best_j_per_th for m in cfg.miners)
    return value_per_th(cfg, hashprice) * 3.6e6 / best_j_per_th


def quality(r: SimResult) -> dict[str, Any]:
    cfg, c, dt = r.cfg, r.columns, r.trace.step_s
    limit = absorbable_w(c["surplus_w"], list(cfg.miners))
    from_surplus = np.minimum(np.minimum(c["miner_from_pv_w"], c["surplus_w"]), limit)
    limit_kwh = float(limit.sum()) * dt / 3.6e6
    miner_kwh = float(np.sum(c["miner_w"])) * dt / 3.6e6
    grid = c["miner_from_grid_w"]
    costly = c["import_price"] > best_value_per_kwh(cfg, r.trace.hashprice)
    costly_miner_kwh = float(np.sum(c["miner_w"][costly])) * dt / 3.6e6
    costly_grid_kwh = float(np.sum(grid[costly])) * dt / 3.6e6
    days = len(c["miner_w"]) * dt / 86_400.0
    starts = {k: v / days for k, v in r.starts.items()} if days > 0 else {}
    return {
        "limit_kwh": limit_kwh,
        "captured_kwh": float(from_surplus.sum()) * dt / 3.6e6,
        "capture_of_limit": float(from_surplus.sum()) / float(limit.sum())
        if limit.sum() > 0 else None,
        "caused_import_kwh": float(grid.sum()) * dt / 3.6e6,
        "caused_import": float(grid.sum()) * dt / 3.6e6 / miner_kwh if miner_kwh > 0 else 0.0,
        "costly_import": costly_grid_kwh / costly_miner_kwh if costly_miner_kwh > 0 else 0.0,
        "starts_per_day": starts,
        "max_starts_per_day": max(starts.values(), default=0.0),
    }
