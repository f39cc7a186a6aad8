"""Summary JSON and timeline CSV for a simulation, and the safety checks behind them.

The checks are the ones the property tests and HIL assertions rely on, so they live here,
once: import-limit violations caused by miners, minimum on/off violations not forced by a
hard limit, tank minutes outside its band.
"""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from controller.plan.value import heat_cost_per_kwh, value_per_th
from controller.sim.runner import TIMELINE_COLUMNS, SimResult

_MONEY = Decimal("0.01")


def import_limit_violations(r: SimResult) -> list[int]:
    """Rows where the miners' *commanded* power would still push import past the limit.

    Import caused by the house alone is not the miners' fault; the miners' shutdown tail
    inside the step they were told to stop is hardware, not a decision. What counts is a
    command that, fully obeyed, would still overload the connection.
    """
    c = r.columns
    limit = r.cfg.site.import_limit_w
    with_targets = c["grid_w"] - c["miner_w"] + c["miner_target_w"]
    bad = (c["grid_w"] > limit + 1.0) & (with_targets > limit + 1.0) & (c["miner_target_w"] > 0)
    return [int(i) for i in np.flatnonzero(bad)]


def min_on_off_violations(r: SimResult) -> list[tuple[str, int, str]]:
    """(miner, row, 'on'|'off') where a switch came too soon and no hard limit forced it."""
    dt = r.trace.step_s
    out: list[tuple[str, int, str]] = []
    for m in r.cfg.miners:
        run = r.miner_run[m.name]
        forced = set(r.forced_off[m.name])
        last_switch = -np.inf
        prev = False
        for i in np.flatnonzero(np.diff(np.concatenate(([False], run))).astype(bool)):
            now = float(i) * dt
            state = bool(run[i])
            if state == prev:
                continue
            held = now - last_switch
            if state and held < m.min_off_s - 1e-6:
                out.append((m.name, int(i), "on"))
            if not state and held < m.min_on_s - 1e-6 and int(i) not in forced:
                out.append((m.name, int(i), "off"))
            last_switch, prev = now, state
    return out


def _kwh(w: np.ndarray[Any, Any], step_s: float) -> float:
    return float(np.nansum(w)) * step_s / 3.6e6


def _money(x: float) -> str:
    return str(Decimal(repr(x)).quantize(_MONEY))


def summarize(r: SimResult) -> dict[str, Any]:
    cfg, c, dt = r.cfg, r.columns, r.trace.step_s
    n = len(c["grid_w"])
    grid = c["grid_w"]
    imp = np.maximum(grid, 0.0)
    exp = np.maximum(-grid, 0.0)
    minutes = dt / 60.0
    # One definition with the ledger: value per TH from the trace's hashprice after pool
    # fee (else [bitcoin]); sats = that value at the configured BTC price.
    btc_value = float(np.sum(c["hashrate_ths"] * value_per_th(cfg, r.trace.hashprice))) * dt
    sats = int(btc_value * 1e8 / float(cfg.bitcoin.btc_price))
    heat_cost = heat_cost_per_kwh(cfg)
    import_cost = float(np.sum(imp * r.trace.import_price)) * dt / 3.6e6
    export_revenue = float(np.sum(exp * r.trace.export_price)) * dt / 3.6e6
    backup_cost = _kwh(c["backup_heat_w"], dt) * heat_cost
    # Heat left in (or taken from) the tank is worth the backup heat it will displace: zero
    # over a year, decisive on a day.
    tank_change = (
        (float(c["tank_c"][-1]) - cfg.tank.start_c) * cfg.tank.heat_capacity_j_per_k / 3.6e6
        * heat_cost if cfg.tank is not None and n else 0.0
    )
    net_value = btc_value + export_revenue - import_cost - backup_cost + tank_change
    capacity = cfg.miner_capacity_w
    # Capture counts only PV the miners took that would otherwise have been exported or
    # curtailed (not PV the battery would have stored), against what they could have taken.
    capturable_w = np.minimum(c["surplus_w"], capacity)
    capturable = _kwh(capturable_w, dt)
    from_surplus = _kwh(np.minimum(c["miner_from_pv_w"], capturable_w), dt)
    from_pv = _kwh(c["miner_from_pv_w"], dt)
    summary: dict[str, Any] = {
        "controller": r.policy,
        "site": cfg.site.id,
        "trace": r.trace.source,
        "steps": n,
        "step_s": dt,
        "hours": n * dt / 3600.0,
        "pv_available_kwh": _kwh(r.trace.pv_w, dt),
        "pv_kwh": _kwh(c["pv_w"], dt),
        "curtailed_kwh": _kwh(c["curtailed_w"], dt),
        "load_kwh": _kwh(c["load_w"], dt),
        "surplus_kwh": _kwh(c["surplus_w"], dt),
        "miner_kwh": _kwh(c["miner_w"], dt),
        "miner_from_pv_kwh": from_pv,
        "miner_from_battery_kwh": _kwh(c["miner_from_battery_w"], dt),
        "miner_from_grid_kwh": _kwh(c["miner_from_grid_w"], dt),
        "miner_from_surplus_kwh": from_surplus,
        "surplus_capture": from_surplus / capturable if capturable > 0 else None,
        "export_kwh": _kwh(exp, dt),
        "import_kwh": _kwh(imp, dt),
        "heat_demand_kwh": _kwh(c["heat_demand_w"], dt),
        "heat_to_tank_kwh": _kwh(c["heat_to_tank_w"], dt),
        "heat_from_tank_kwh": _kwh(c["heat_from_tank_w"], dt),
        "backup_heat_kwh": _kwh(c["backup_heat_w"], dt),
        "unserved_kwh": _kwh(c["unserved_w"], dt),  # island: load PV + battery could not cover
        "tank_minutes_above_max": (
            float(np.sum(c["tank_c"] > cfg.tank.max_c)) * minutes if cfg.tank else 0.0
        ),
        "tank_minutes_below_min": (
            float(np.sum(c["tank_c"] < cfg.tank.min_c)) * minutes if cfg.tank else 0.0
        ),
        "tank_max_c": float(np.nanmax(c["tank_c"])) if cfg.tank else None,
        "soc_min_pct": float(np.nanmin(c["soc_pct"])) if cfg.battery else None,
        "miner_starts": dict(r.starts),
        "miner_kwh_by_miner": {k: float(v.sum()) / 3.6e6 for k, v in r.miner_energy_j.items()},
        "import_limit_violations": len(import_limit_violations(r)),
        "min_on_off_violations": len(min_on_off_violations(r)),
        "trip_rows": dict(sorted(r.trips.items())),
        "sats_earned": sats,
        "currency": cfg.site.currency,
        "import_cost": _money(import_cost),
        "export_revenue": _money(export_revenue),
        "btc_value": _money(btc_value),
        "heat_value": _money(_kwh(c["heat_from_tank_w"], dt) * heat_cost),
        "backup_heat_cost": _money(backup_cost),
        "tank_heat_change_value": _money(tank_change),
        "net_value": _money(net_value),
        "wall_s": round(r.wall_s, 3),
    }
    if r.plan is not None:
        summary["plan"] = r.plan
    return summary


def write_summary(summary: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")


def _fmt(a: np.ndarray[Any, Any], spec: str) -> list[str]:
    out: list[str] = np.char.mod(spec, a).tolist()
    return ["" if s == "nan" else s for s in out]


def timeline_text(r: SimResult) -> str:
    c = r.columns
    times = np.datetime_as_string(r.trace.time_s.astype("datetime64[s]"), unit="s")
    cols: list[list[str]] = [[f"{t}Z" for t in times.tolist()]]
    for name in TIMELINE_COLUMNS[1:-1]:
        spec = "%.5f" if name.endswith("price") else "%.2f" if name in ("soc_pct", "tank_c") \
            else "%.1f"
        cols.append(_fmt(c[name], spec))
    cols.append(r.mode)
    buf = io.StringIO()
    buf.write(",".join(TIMELINE_COLUMNS) + "\n")
    buf.writelines(",".join(row) + "\n" for row in zip(*cols, strict=True))
    return buf.getvalue()


def write_timeline(r: SimResult, path: str | Path) -> None:
    text = timeline_text(r)
    p = Path(path)
    if p.suffix == ".gz":
        with gzip.open(p, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        p.write_text(text, encoding="utf-8")
