"""Side-by-side table of simulation summaries (what `make demo` and `hearth compare` print).

`net value` = BTC value + export revenue − import cost − backup heat cost + the change of
heat stored in the tank: every column sees the same trace, so differences in it are
exactly what the miners' control is worth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.plan.ceiling import CeilingResult

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("pv_kwh", "PV used", "{:.1f} kWh"),
    ("surplus_kwh", "surplus without miners", "{:.1f} kWh"),
    ("miner_kwh", "miner energy", "{:.1f} kWh"),
    ("miner_from_pv_kwh", "  from PV", "{:.1f} kWh"),
    ("miner_from_battery_kwh", "  from battery", "{:.2f} kWh"),
    ("miner_from_grid_kwh", "  from grid", "{:.2f} kWh"),
    ("surplus_capture", "surplus capture", "{:.1%}"),
    ("miner_from_surplus_kwh", "miner energy from surplus", "{:.2f} kWh"),
    ("capture_of_ceiling", "  % of capture ceiling", "{:.1%}"),
    ("capture_of_limit", "capture of physical limit", "{:.1%}"),
    ("caused_import", "caused import (of miner kWh)", "{:.1%}"),
    ("costly_import", "  when import > mining value", "{:.1%}"),
    ("export_kwh", "export", "{:.1f} kWh"),
    ("import_kwh", "import", "{:.1f} kWh"),
    ("heat_to_tank_kwh", "heat into tank", "{:.1f} kWh"),
    ("backup_heat_kwh", "backup heat", "{:.1f} kWh"),
    ("unserved_kwh", "unserved load (island)", "{:.2f} kWh"),
    ("tank_max_c", "tank max", "{:.1f} °C"),
    ("tank_minutes_above_max", "tank minutes above max", "{:.0f}"),
    ("tank_minutes_below_min", "tank minutes below min", "{:.0f}"),
    ("soc_min_pct", "battery min SoC", "{:.1f} %"),
    ("miner_starts", "miner starts", "{}"),
    ("max_starts_per_day", "starts/day, worst miner", "{:.1f}"),
    ("stops_held_at_min", "stops held at min (no pause)", "{}"),
    ("import_limit_violations", "import-limit violations", "{}"),
    ("min_on_off_violations", "min on/off violations", "{}"),
    ("sats_earned", "sats earned", "{:,}"),
    ("btc_value", "BTC value", "{}"),
    ("heat_value", "heat value", "{}"),
    ("import_cost", "grid import cost", "{}"),
    ("export_revenue", "export revenue", "{}"),
    ("backup_heat_cost", "backup heat cost", "{}"),
    ("tank_heat_change_value", "tank heat change", "{}"),
    ("net_value", "net value", "{}"),
    ("value_of_ceiling", "  % of value ceiling", "{:.1%}"),
    ("plan_replans", "plan re-plans", "{}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return fmt.format(value)


def bound_summary(like: dict[str, Any], value: float) -> dict[str, Any]:
    """A column for the loose bound (the relaxed perfect-foresight LP: miners from 0 W, no
    on/off): only its net value is meaningful."""
    return {k: like[k] for k in ("site", "trace", "hours", "step_s", "currency")} | {
        "controller": "loose bound", "net_value": f"{value:.2f}"}


def with_ceiling(summaries: list[dict[str, Any]], res: CeilingResult) -> list[dict[str, Any]]:
    """Each policy as a share of the ceiling (`hearth bound`), and a column for it.

    Capture: the policy's miner energy from surplus / the capture ceiling (most surplus
    absorbed with no miner-caused import). Value: what the miners add to the net value
    over a site without them, / what they add at the ceiling."""
    cap = res.capture.bound
    val = res.value.bound if res.value is not None else None
    base = res.baseline_value
    out = []
    for s in summaries:
        s = dict(s)
        if s.get("miner_from_surplus_kwh") is not None and cap > 0:
            s["capture_of_ceiling"] = s["miner_from_surplus_kwh"] / cap
        if val is not None and s.get("net_value") is not None and val > base \
                and s.get("controller") != "loose bound":
            s["value_of_ceiling"] = (float(s["net_value"]) - base) / (val - base)
        out.append(s)
    first = summaries[0]
    col: dict[str, Any] = {k: first[k] for k in ("site", "trace", "hours", "step_s",
                                                 "currency")}
    col |= {"controller": "ceiling", "miner_from_surplus_kwh": cap,
            "capture_of_ceiling": 1.0}
    if val is not None:
        col |= {"net_value": f"{val:.2f}", "value_of_ceiling": 1.0}
    return [*out, col]


def render_comparison(summaries: list[dict[str, Any]]) -> str:
    head = ["", *(s["controller"] for s in summaries)]
    rows = [head]
    for s in summaries:
        if isinstance(s.get("plan"), dict):
            s.setdefault("plan_replans", s["plan"].get("replans"))
        if isinstance(s.get("quality"), dict):  # controller/sim/quality.py's figures
            for name in ("capture_of_limit", "caused_import", "costly_import",
                         "max_starts_per_day"):
                s.setdefault(name, s["quality"].get(name))
    for key, label, fmt in _ROWS:
        if all(s.get(key) is None or s.get(key) == {} for s in summaries):
            continue
        rows.append([label, *(_cell(s.get(key), fmt) for s in summaries)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    first = summaries[0]
    lines.append(f"site {first['site']} · trace {first['trace']} · {first['hours']:.0f} h "
                 f"at {first['step_s']:.0f} s steps · money in {first['currency']}")
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(r)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
