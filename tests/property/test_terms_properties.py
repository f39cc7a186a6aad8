"""The two faces of the one definition of what mining is worth (issue 16) agree on any
row: the float series the simulator, plan and bound use, and the exact terms the
controller and the ledger use."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import simkit
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.economics.hashprice import DAY_S, SATS_PER_BTC, RowTerms, terms_series

CFG = simkit.site()

nan_or = st.one_of(st.just(math.nan), st.floats(1.0, 5000.0))
price_or = st.one_of(st.just(math.nan), st.floats(1000.0, 200_000.0))
hp_or = st.one_of(st.just(math.nan), st.just(0.0), st.floats(1e-6, 1.0))  # no subnormals


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(nan_or, price_or, hp_or), min_size=1, max_size=20))
def test_series_and_exact_terms_agree(rows: list[tuple[float, float, float]]) -> None:
    hv, btc, hp = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    series = terms_series(CFG.bitcoin, hv, btc, hp)
    exact = RowTerms(CFG.bitcoin)
    for i, (h, b, p) in enumerate(rows):
        t = exact(h, b, p)
        assert math.isclose(series.sats_per_th[i], float(t.sats_per_th_s()), rel_tol=1e-12)
        assert math.isclose(series.value_per_th[i], float(t.value_per_th_s()), rel_tol=1e-12,
                            abs_tol=1e-18)
        # fiat = sats x the row's BTC price, whatever the row gave
        assert t.value_per_th_s() == t.sats_per_th_s() * Fraction(t.btc_price) / SATS_PER_BTC
        if not math.isnan(h):  # a given hashvalue is what a TH/s earns a day
            keep = 1 - CFG.bitcoin.pool_fee_pct / 100
            assert math.isclose(float(t.sats_per_th_s()) * DAY_S, h * keep, rel_tol=1e-12)
