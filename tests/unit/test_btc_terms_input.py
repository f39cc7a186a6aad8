"""The bitcoin terms are a per-step input of the pure core (`Measurements.btc_terms`):
the controller decides on the terms of the snapshot, and falls back to the site file's
static `[bitcoin]` terms when the snapshot carries none (issue 16)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import simkit

from controller.control.controller import Controller
from controller.control.types import Commands
from controller.economics.hashprice import BtcTerms, Hashvalue, config_terms
from hil.plant import Plant


def _room_site() -> Any:
    miners = simkit.site_dict()["miners"]
    for m in miners:
        m["heats_tank"] = False
    return simkit.site(battery=None, tank=None, miners=miners)


def _run(terms: list[BtcTerms | None], seconds_each: int = 1200,
         imp: float = 0.10) -> list[Commands]:
    """Night (no PV), import at `imp`: only the price rule can make the miners run."""
    cfg = _room_site()
    plant, ctrl = Plant(cfg), Controller(cfg)
    out = []
    t = 0
    for bt in terms:
        for _ in range(seconds_each):
            now = float(t)
            m = plant.measure(now, 0.0, 400.0, imp, 0.05)._replace(btc_terms=bt)
            cmds = ctrl.step(m, now)
            plant.step(cmds, 1.0, 0.0, 400.0, 0.0)
            t += 1
        out.append(cmds)
    return out


def test_the_snapshot_terms_decide_what_is_worth_buying() -> None:
    cfg = _room_site()
    static = config_terms(cfg.bitcoin)
    f = static.hashvalue_sats_per_th_day()
    hv = Decimal(f.numerator) / Decimal(f.denominator)
    fee = static.pool_fee_pct
    rich = Hashvalue(hv * 20, static.btc_price, fee)  # the S9 too beats 0.10 per kWh
    poor = Hashvalue(Decimal(0), static.btc_price, fee)  # nothing is worth buying
    none, high, low, back = _run([None, rich, poor, None])
    # Static terms: the Bitaxes (0.13 per kWh) are bought for at 0.10, not the S9 (0.026).
    assert none.by_name()["bitaxe-1"].run and not none.by_name()["s9"].run
    assert high.by_name()["s9"].run and high.limiter == "price"
    assert not any(c.run for c in low.miners if c.name == "s9")
    assert low.total_target_w < none.total_target_w
    # None again: the static terms, and the same decision as at first.
    assert back.by_name()["bitaxe-1"].run and not back.by_name()["s9"].run
    assert back.total_target_w == none.total_target_w


def test_same_terms_as_the_config_decide_as_none() -> None:
    cfg = _room_site()
    same = config_terms(cfg.bitcoin)
    a = _run([None, None])
    b = _run([same, same])
    assert [c.total_target_w for c in a] == [c.total_target_w for c in b]
