"""The control-quality figures: the physical limit on hand-checked cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.config import load_site
from controller.sim.quality import absorbable_w, quality
from controller.sim.runner import simulate
from controller.trace.reader import read_trace

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "hil" / "sites" / "surplus-10kwp.toml"


def test_absorbable_limit_by_hand() -> None:
    cfg = load_site(SITE)  # s19 1500-3300, 2x s9 600-1400, 2x bitaxe 15-20
    s = np.array([0.0, 10.0, 15.0, 599.0, 620.0, 1440.0, 1450.0, 2100.0, 4200.0, 9000.0])
    got = absorbable_w(s, list(cfg.miners))
    # 10 W: nothing fits; 15 W: one Bitaxe; 599 W: two Bitaxes at 20; 620: an S9 + ...;
    # 1450: S9 1400 + 2x20 = 1440 -> 1440 (S19 needs 1500); 2100: S19 2100;
    # 9000: everything at max = 6140.
    assert got.tolist() == [0.0, 0.0, 15.0, 40.0, 620.0, 1440.0, 1450.0, 2100.0, 4200.0,
                            6140.0]


def test_quality_of_a_real_trace_is_bounded() -> None:
    cfg = load_site(SITE)
    tr = read_trace(ROOT / "hil" / "traces" / "dev" / "serf-2day-1min.csv", cfg)
    q = quality(simulate(cfg, tr, "threshold", progress=False))
    assert 0.0 < q["capture_of_limit"] <= 1.0
    assert q["captured_kwh"] <= q["limit_kwh"] + 1e-9
    assert 0.0 <= q["caused_import"] <= 1.0
    assert set(q["starts_per_day"]) == {m.name for m in cfg.miners}
