"""The export margin is where the grid loop regulates inside a running set's range, not a
condition for running: a miner whose minimum fits under the surplus itself keeps running
(exporting the rest, importing nothing), and a start needs its minimum plus the start
hysteresis, not that plus the margin as well."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import simkit

from controller.config.models import SiteConfig
from controller.sim.runner import simulate

SURPLUS_SITE = Path(__file__).resolve().parents[2] / "hil" / "sites" / "surplus-10kwp.toml"


def _one_s9() -> SiteConfig:
    d = simkit.site_dict(SURPLUS_SITE)
    s9 = next(m for m in d["miners"] if m["name"] == "s9-a")
    return simkit.site(SURPLUS_SITE, miners=[s9])


def _run(surplus_w: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
    cfg = _one_s9()
    pv = np.concatenate([np.full(n, 500.0 + w) for w, n in surplus_w])
    r = simulate(cfg, simkit.trace(pv, 500.0), "hearth", progress=False)
    return r.columns["miner_w"], r.columns["grid_w"]


def test_a_running_miner_within_the_margin_of_its_minimum_keeps_running_without_import() -> None:
    # 10 min at 1000 W of surplus, then 30 min at 620 W: above the S9's 600 W minimum,
    # below minimum + the 50 W margin.
    miner, grid = _run([(1000.0, 600), (620.0, 1800)])
    tail = slice(600 + 300, None)  # after the ramp down
    assert np.all(miner[tail] >= 599.0), miner[tail].min()
    assert np.all(grid[tail] <= 0.5), grid[tail].max()  # never imports


def test_a_start_needs_minimum_plus_hysteresis_not_plus_the_margin_too() -> None:
    # 680 W of surplus: the S9's 600 W + 50 W hysteresis fit, + the 50 W margin would not.
    miner, grid = _run([(680.0, 900)])
    assert miner[-60:].min() >= 599.0
    assert np.all(grid[-60:] <= 0.5)
