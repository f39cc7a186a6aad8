"""What mining is worth, one module (controller/economics/hashprice.py, issue 16): the
known answer of the network formula, the trace columns resolved row by row, the float
series agreeing with the exact terms, and bad bitcoin cells refused by name."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import simkit

from controller.economics.hashprice import (
    DAY_S,
    GivenHashprice,
    Hashvalue,
    NetworkTerms,
    RowTerms,
    config_terms,
    terms_series,
)
from controller.errors import InputError
from controller.trace.reader import parse_trace

# Real network terms: the first row of 2023 in the shared daily data (difficulty as
# printed by blockchain.com) and the 2020-2024 subsidy + 0.03 BTC of fees.
D = Decimal("35364065900457.1")
R_SATS = 628_000_000  # 6.25 + 0.03 BTC


def test_one_th_for_a_day_known_answer_to_the_millisat() -> None:
    t = NetworkTerms(D, R_SATS, Decimal("15000"))
    sats = t.sats_per_th_s() * DAY_S  # 1 TH/s for 24 h
    want_btc = Fraction(86_400 * 10**12 * R_SATS, 100_000_000) / (Fraction(D) * 2**32)
    assert sats == want_btc * 100_000_000  # exact
    assert math.floor(sats * 1000) == math.floor(want_btc * 100_000_000_000)  # millisats
    # Given as a hashvalue (sats per TH/s per day), the same sats and their value.
    hv = t.hashvalue_sats_per_th_day()
    given = Hashvalue(Decimal(hv.numerator) / Decimal(hv.denominator), Decimal("15000"))
    assert math.floor(given.sats_per_th_s() * DAY_S * 1000) == math.floor(sats * 1000)
    assert given.value_per_th_s() == given.sats_per_th_s() * 15000 / 100_000_000


def test_hashprice_converts_with_the_btc_price() -> None:
    hp = GivenHashprice(Decimal("0.05"), Decimal("25000"))
    hv = Hashvalue(Decimal("200"), Decimal("25000"))  # 0.05 / 25000 x 1e8 sats
    assert hp.sats_per_th_s() == hv.sats_per_th_s()
    assert hp.value_per_th_s() == hv.value_per_th_s()


def test_rows_resolve_as_documented_and_the_series_agrees_with_the_exact_terms() -> None:
    cfg = simkit.site()
    b = cfg.bitcoin
    nan = math.nan
    hv = np.array([nan, 200.0, nan, nan, 150.0])
    btc = np.array([nan, 30000.0, 20000.0, 40000.0, nan])
    hp = np.array([nan, nan, nan, 0.06, nan])
    series = terms_series(b, hv, btc, hp)
    rows = RowTerms(b)
    exact = [rows(*k) for k in zip(hv.tolist(), btc.tolist(), hp.tolist(), strict=True)]
    base = config_terms(b)
    assert exact[0] is rows.base and exact[0] == base  # nothing given: the site file's terms
    assert isinstance(exact[1], Hashvalue) and exact[1].btc_price == 30000
    assert isinstance(exact[2], NetworkTerms) and exact[2].btc_price == 20000
    assert isinstance(exact[3], GivenHashprice)
    assert exact[4].btc_price == b.btc_price  # hashvalue given, price from the file
    for i, t in enumerate(exact):
        assert series.sats_per_th[i] == pytest.approx(float(t.sats_per_th_s()), rel=1e-12)
        assert series.value_per_th[i] == pytest.approx(float(t.value_per_th_s()), rel=1e-12)
    # The same row twice is the same object (the controller re-derives only on change).
    assert rows(nan, nan, nan) is rows(nan, nan, nan) and rows(1.0, 2.0, nan) is rows(1.0, 2.0,
                                                                                      nan)
    assert len(rows._cache) == 6


def test_trace_columns_are_read_and_bad_cells_named() -> None:
    cfg = simkit.site()
    head = "time,pv_w,load_w,hashvalue_sats_per_th_day,btc_price\n"
    ok = parse_trace(head + "2023-01-01T00:00:00Z,0,100,150.5,15000\n"
                     "2023-01-01T00:01:00Z,0,100,151,15001\n", cfg)
    assert ok.hashvalue_sats_per_th_day.tolist() == [150.5, 151.0]
    assert ok.btc_price.tolist() == [15000.0, 15001.0]
    assert math.isnan(ok.hashprice[0])
    old = parse_trace("time,pv_w,load_w\n2023-01-01T00:00:00Z,0,100\n"
                      "2023-01-01T00:01:00Z,0,100\n", cfg)  # old traces stay valid
    assert np.isnan(old.btc_price).all() and np.isnan(old.hashvalue_sats_per_th_day).all()
    with pytest.raises(InputError) as err:
        parse_trace(head + "2023-01-01T00:00:00Z,0,100,-1,15000\n"
                    "2023-01-01T00:01:00Z,0,100,150,0\n"
                    "2023-01-01T00:02:00Z,0,100,x,15000\n", cfg)
    text = str(err.value)
    assert "row 2, column hashvalue_sats_per_th_day" in text and "negative" in text
    assert "row 3, column btc_price" in text and "above 0" in text
    assert "row 4, column hashvalue_sats_per_th_day" in text and "not a number" in text
