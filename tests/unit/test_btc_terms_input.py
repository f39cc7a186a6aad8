"""The bitcoin terms are a per-step input of the pure core (`Measurements.btc_terms`):
the controller decides on the terms of the snapshot, and falls back to the site file's
static `[bitcoin]` terms when the snapshot carries none (issue 16)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import simkit

from controller.control.controller import Controller
from controller.control.types import Commands
from controller.economics.hashprice import BtcTerms, Hashvalue, config_terms
from controller.sim.plant import Plant


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


def _night_csv(hashvalue: float | None, hours: int = 3) -> str:
    """Night (no PV), 400 W of load, import 0.10 per kWh, one-minute steps."""
    extra = "" if hashvalue is None else ",hashvalue_sats_per_th_day,btc_price"
    rows = [f"time,pv_w,load_w,import_price,export_price{extra}"]
    for k in range(hours * 60):
        cells = f"2023-06-01T{k // 60:02d}:{k % 60:02d}:00Z,0,400,0.10,0.05"
        rows.append(cells if hashvalue is None else f"{cells},{hashvalue},85000")
    return "\n".join(rows) + "\n"


def test_the_trace_hashvalue_changes_the_miners_decisions_in_hearth_sim(tmp_path: Any) -> None:
    import tomli_w

    from controller.cli import main

    d = simkit.site_dict()
    for k in ("battery", "tank"):
        d.pop(k, None)
    for m in d["miners"]:
        m["heats_tank"] = False
    site = tmp_path / "room.toml"  # no battery, no tank: the price rule alone decides
    site.write_text(tomli_w.dumps(d))
    energy = {}
    for name, hv in (("none", None), ("low", 10.0), ("high", 2000.0)):
        trace = tmp_path / f"{name}.csv"
        trace.write_text(_night_csv(hv))
        summary = tmp_path / f"{name}.json"
        assert main(["sim", "--config", str(site), "--trace", str(trace),
                     "--summary", str(summary)]) == 0
        energy[name] = json.loads(summary.read_text())
    # 10 sats per TH/s·day: nothing is worth buying at 0.10 (the Bitaxes that cannot pause
    # stay at their minimum, as with the file's terms); 2000: every miner is.
    held_kwh = simkit.held_w(simkit.site()) * 3 / 1000
    assert energy["low"]["miner_kwh"] == pytest.approx(held_kwh, abs=0.01)
    assert energy["high"]["miner_kwh"] > 10 * energy["none"]["miner_kwh"]
    assert energy["high"]["sats_earned"] > 10 * energy["none"]["sats_earned"]
