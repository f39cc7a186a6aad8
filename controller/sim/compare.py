"""Side-by-side table of simulation summaries (what `make demo` and `hearth compare` print).

`net value` = BTC value + export revenue − import cost − backup heat cost + the change of
heat stored in the tank: every column sees the same trace, so differences in it are
exactly what the miners' control is worth."""

from __future__ import annotations

from typing import Any

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("pv_kwh", "PV used", "{:.1f} kWh"),
    ("surplus_kwh", "surplus without miners", "{:.1f} kWh"),
    ("miner_kwh", "miner energy", "{:.1f} kWh"),
    ("miner_from_pv_kwh", "  from PV", "{:.1f} kWh"),
    ("miner_from_battery_kwh", "  from battery", "{:.2f} kWh"),
    ("miner_from_grid_kwh", "  from grid", "{:.2f} kWh"),
    ("surplus_capture", "surplus capture", "{:.1%}"),
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
    ("plan_replans", "plan re-plans", "{}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return fmt.format(value)


def bound_summary(like: dict[str, Any], value: float) -> dict[str, Any]:
    """A column for the perfect-foresight optimum: only its net value is meaningful."""
    return {k: like[k] for k in ("site", "trace", "hours", "step_s", "currency")} | {
        "controller": "perfect foresight", "net_value": f"{value:.2f}"}


def render_comparison(summaries: list[dict[str, Any]]) -> str:
    head = ["", *(s["controller"] for s in summaries)]
    rows = [head]
    for s in summaries:
        if isinstance(s.get("plan"), dict):
            s.setdefault("plan_replans", s["plan"].get("replans"))
    for key, label, fmt in _ROWS:
        if all(s.get(key) is None for s in summaries):
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
