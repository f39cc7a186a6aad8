"""Summary JSON and timeline CSV for a simulation, and the safety checks behind them.

The checks are the ones the property tests and HIL assertions rely on: import-limit
violations caused by miners, minimum on/off violations not forced by a hard limit, tank
minutes outside its band. They are defined once, on blocks, in `controller.sim.stream`;
the summary reads the running sums a run kept (`SimResult.totals`), so it works for a
streamed run as for one that kept its columns.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from controller.plan.value import heat_cost_per_kwh
from controller.sim.runner import SimResult
from controller.sim.stream import (
    TIMELINE_HEADER,
    OnOffCheck,
    TimelineWriter,
    import_violation_rows,
    timeline_rows,
)

_MONEY = Decimal("0.01")


def import_limit_violations(r: SimResult) -> list[int]:
    """Rows where the miners' *commanded* power would still push import past the limit
    (see `controller.sim.stream.import_violation_rows`); needs kept columns."""
    return import_violation_rows(r.as_block(), r.cfg.site.import_limit_w)


def min_on_off_violations(r: SimResult) -> list[tuple[str, int, str]]:
    """(miner, row, 'on'|'off') where a switch came too soon and no hard limit forced it;
    needs kept columns."""
    return OnOffCheck(r.cfg, r.step_s).feed(r.as_block())


def _money(x: float) -> str:
    return str(Decimal(repr(x)).quantize(_MONEY))


def summarize(r: SimResult) -> dict[str, Any]:
    """The run's summary, from its running sums (works for streamed runs too)."""
    cfg, t, dt = r.cfg, r.totals, r.step_s
    n = t.steps
    minutes = dt / 60.0
    # One definition with the ledger (economics.hashprice): sats = TH x the step's
    # hashvalue after pool fee; value = those sats at the step's BTC price.
    btc_value = t.btc_value * dt
    sats = int(t.btc_sats * dt)
    heat_cost = heat_cost_per_kwh(cfg)
    import_cost = t.import_cost * dt / 3.6e6
    export_revenue = t.export_revenue * dt / 3.6e6
    backup_cost = t.kwh("backup_heat_w") * heat_cost
    # Heat left in (or taken from) the tank is worth the backup heat it will displace: zero
    # over a year, decisive on a day.
    tank_change = (
        (t.tank_last_c - cfg.tank.start_c) * cfg.tank.heat_capacity_j_per_k / 3.6e6
        * heat_cost if cfg.tank is not None and n else 0.0
    )
    net_value = btc_value + export_revenue - import_cost - backup_cost + tank_change
    # Capture counts only PV the miners took that would otherwise have been exported or
    # curtailed (not PV the battery would have stored), against what they could have taken.
    capturable = t.capturable * dt / 3.6e6
    from_surplus = t.from_surplus * dt / 3.6e6
    summary: dict[str, Any] = {
        "controller": r.policy,
        "site": cfg.site.id,
        "trace": r.source,
        "steps": n,
        "step_s": dt,
        "hours": n * dt / 3600.0,
        "pv_available_kwh": t.pv_available * dt / 3.6e6,
        "pv_kwh": t.kwh("pv_w"),
        "curtailed_kwh": t.kwh("curtailed_w"),
        "load_kwh": t.kwh("load_w"),
        "surplus_kwh": t.kwh("surplus_w"),
        "miner_kwh": t.kwh("miner_w"),
        "miner_from_pv_kwh": t.kwh("miner_from_pv_w"),
        "miner_from_battery_kwh": t.kwh("miner_from_battery_w"),
        "miner_from_grid_kwh": t.kwh("miner_from_grid_w"),
        "miner_from_surplus_kwh": from_surplus,
        "surplus_capture": from_surplus / capturable if capturable > 0 else None,
        "export_kwh": t.export * dt / 3.6e6,
        "import_kwh": t.import_ * dt / 3.6e6,
        "heat_demand_kwh": t.kwh("heat_demand_w"),
        "heat_to_tank_kwh": t.kwh("heat_to_tank_w"),
        "heat_from_tank_kwh": t.kwh("heat_from_tank_w"),
        "backup_heat_kwh": t.kwh("backup_heat_w"),
        "unserved_kwh": t.kwh("unserved_w"),  # island: load PV + battery could not cover
        "tank_minutes_above_max": float(t.tank_rows_above) * minutes if cfg.tank else 0.0,
        "tank_minutes_below_min": float(t.tank_rows_below) * minutes if cfg.tank else 0.0,
        "tank_max_c": t.tank_max_c if cfg.tank and n else None,
        "soc_min_pct": t.soc_min_pct if cfg.battery and n else None,
        "miner_starts": dict(r.starts),
        # Miners without a pause in their API (AxeOS): how often the controller told them to
        # stop, which the plant (like the driver) carried out as "hold at minimum power".
        "stops_held_at_min": dict(r.stops_held_at_min),
        "miner_kwh_by_miner": {k: v / 3.6e6 for k, v in t.miner_energy_j.items()},
        "import_limit_violations": t.import_violations,
        "min_on_off_violations": t.on_off_violations,
        "trip_rows": dict(sorted(r.trips.items())),
        "sats_earned": sats,
        "currency": cfg.site.currency,
        "import_cost": _money(import_cost),
        "export_revenue": _money(export_revenue),
        "btc_value": _money(btc_value),
        "heat_value": _money(t.kwh("heat_from_tank_w") * heat_cost),
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


def timeline_text(r: SimResult) -> str:
    """The timeline CSV of a kept result (a streamed run writes it with `TimelineWriter`)."""
    tr = r.kept_trace()
    return TIMELINE_HEADER + timeline_rows(tr.time_s, r.columns, r.mode)


def write_timeline(r: SimResult, path: str | Path) -> None:
    w = TimelineWriter(path)
    w.block(r.as_block())
    w.close()
