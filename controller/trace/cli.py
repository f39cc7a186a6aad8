"""`hearth trace build` and `hearth trace check`.

`register(subparsers)` adds the `trace` command group to the main `hearth` parser. Each
sub-command stores its handler as ``func`` (``args.func(args) -> int``). Handlers let
`InputError` propagate: the main CLI prints it and picks the exit code.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np

from controller.config.load import load_site
from controller.errors import InputError, Problem
from controller.trace.build import (
    DEFAULT_DHW_W,
    DEFAULT_HEATING_BASE_C,
    DEFAULT_UA_W_PER_K,
    DEFAULT_USD_TO_EUR,
    BuildOptions,
    build_trace,
    write_trace_csv,
)
from controller.trace.reader import Trace, iso_utc, iter_trace


class _HelpWithDefaults(argparse.HelpFormatter):
    """Like ArgumentDefaultsHelpFormatter, but silent about options without a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `trace build` and `trace check` to the main parser's sub-commands."""
    trace = subparsers.add_parser(
        "trace",
        help="build and check simulation traces",
        description="Traces are the time series `hearth sim` runs against (see DESIGN.md).",
    )
    sub = trace.add_subparsers(dest="trace_command", metavar="COMMAND", required=True)

    b = sub.add_parser(
        "build",
        help="turn raw real-data files into a trace CSV",
        description=(
            "Build a trace from irradiance, load, heat, price and Bitcoin files. Sources "
            "from other years are mapped onto the output calendar by month-day and UTC "
            "time (Feb 29 -> Feb 28); see controller/trace/build.py for every convention."
        ),
        formatter_class=_HelpWithDefaults,
    )
    b.add_argument("--config", required=True, type=Path, help="site TOML (PV, location)")
    b.add_argument("--start", required=True, type=_date, help="first day (UTC), YYYY-MM-DD")
    b.add_argument("--days", type=int, default=1, help="number of days")
    b.add_argument("--step-s", type=int, default=60, help="output step in seconds")
    b.add_argument("--out", required=True, type=Path, help="output .csv or .csv.gz")
    g = b.add_argument_group("PV")
    g.add_argument("--irradiance", required=True, type=Path, help="time,dhi,ghi,dni (W/m², UTC)")
    g.add_argument(
        "--irradiance-beam",
        choices=("auto", "dni", "horizontal"),
        default="auto",
        help="what the 'dni' column holds: direct normal, or beam on the horizontal",
    )
    g.add_argument("--temperature", type=Path, help="time,temperature (°C, UTC), optional")
    g = b.add_argument_group("load")
    g.add_argument("--load", required=True, type=Path, help="time,<W columns> (15 min, UTC)")
    g.add_argument("--load-column", help="which column (needed if there are several)")
    g.add_argument("--load-scale", type=float, default=1.0, help="multiply the load by this")
    g = b.add_argument_group("heat")
    g.add_argument("--heat", type=Path, help="heat meter: time_utc,...,heat_kwh_in_hour")
    g.add_argument("--heat-scale", type=float, default=1.0, help="multiply the heat by this")
    g.add_argument("--heat-year", type=int, help="year of the heat file to use (default: auto)")
    g.add_argument(
        "--building-ua-w-per-k",
        type=float,
        help=f"without --heat: heat loss per K below the base (default {DEFAULT_UA_W_PER_K:g})",
    )
    g.add_argument(
        "--heating-base-c",
        type=float,
        help=f"without --heat: no space heating above this (default {DEFAULT_HEATING_BASE_C:g})",
    )
    g.add_argument(
        "--dhw-w",
        type=float,
        help=f"without --heat: constant hot-water draw (default {DEFAULT_DHW_W:g})",
    )
    g = b.add_argument_group("prices")
    g.add_argument("--prices", type=Path, help="time,price_eur_per_mwh (day-ahead, local time)")
    g.add_argument("--prices-tz", default="Europe/Brussels", help="time zone of --prices")
    g.add_argument("--prices-year", type=int, help="year of the price file (default: auto)")
    g.add_argument(
        "--import-markup-per-kwh",
        type=float,
        default=0.15,
        help="grid fees and taxes added to spot for import (site currency)",
    )
    g.add_argument("--export-factor", type=float, default=1.0, help="export price = this × spot")
    g.add_argument(
        "--eur-to-currency", type=float, help="EUR to site currency (default 1 for EUR sites)"
    )
    g = b.add_argument_group("bitcoin")
    g.add_argument("--btc", type=Path, help="daily date,close_usd,difficulty")
    g.add_argument("--btc-year", type=int, help="year of the BTC file to use (default: auto)")
    g.add_argument(
        "--usd-to-currency",
        type=float,
        help=f"USD to site currency (default {DEFAULT_USD_TO_EUR} for EUR sites)",
    )
    g.add_argument(
        "--fees-per-block-btc", type=float, default=0.03, help="transaction fees per block"
    )
    b.set_defaults(func=cmd_build)

    c = sub.add_parser(
        "check",
        help="validate a trace and print its period and totals",
        description="Read a trace as `hearth sim` would and summarise it.",
    )
    c.add_argument("trace", type=Path, help="trace .csv or .csv.gz")
    c.add_argument("--config", required=True, type=Path, help="site TOML (for defaults)")
    c.set_defaults(func=cmd_check)


def cmd_build(args: argparse.Namespace) -> int:
    """Build a trace and print what each source contributed."""
    cfg = load_site(args.config)
    opts = BuildOptions(
        start=args.start,
        days=args.days,
        step_s=args.step_s,
        irradiance=args.irradiance,
        irradiance_beam=args.irradiance_beam,
        temperature=args.temperature,
        load=args.load,
        load_column=args.load_column,
        load_scale=args.load_scale,
        heat=args.heat,
        heat_scale=args.heat_scale,
        heat_year=args.heat_year,
        building_ua_w_per_k=args.building_ua_w_per_k,
        heating_base_c=args.heating_base_c,
        dhw_w=args.dhw_w,
        prices=args.prices,
        prices_tz=args.prices_tz,
        prices_year=args.prices_year,
        import_markup_per_kwh=args.import_markup_per_kwh,
        export_factor=args.export_factor,
        eur_to_currency=args.eur_to_currency,
        btc=args.btc,
        btc_year=args.btc_year,
        usd_to_currency=args.usd_to_currency,
        fees_per_block_btc=args.fees_per_block_btc,
    )
    if not (args.out.name.endswith(".csv") or args.out.name.endswith(".csv.gz")):
        raise InputError("--out", [Problem("", f"must end in .csv or .csv.gz: {args.out}")])
    built = build_trace(cfg, opts)
    write_trace_csv(args.out, built)
    print(f"wrote {args.out}: {len(built.time_s)} rows, step {built.step_s} s")
    for note in built.notes:
        print(f"  {note}")
    return 0


class TraceStats:
    """Running figures of a trace fed chunk by chunk (`trace check` on any length)."""

    _SPANS = ("outdoor_c", "import_price", "export_price", "hashprice", "dr_limit_w",
              "hashvalue_sats_per_th_day", "btc_price")

    def __init__(self) -> None:
        self.rows = 0
        self.step_s = 0.0
        self.source = ""
        self.columns: frozenset[str] = frozenset()
        self.start_s = self.end_s = 0.0
        self.sum = dict.fromkeys(("pv_w", "load_w", "heat_demand_w"), 0.0)
        self.max = dict.fromkeys(("pv_w", "load_w", "heat_demand_w"), -np.inf)
        self.lo = dict.fromkeys(self._SPANS, np.inf)
        self.hi = dict.fromkeys(self._SPANS, -np.inf)
        self.total = dict.fromkeys(self._SPANS, 0.0)
        self.count = dict.fromkeys(self._SPANS, 0)

    def add(self, tr: Trace) -> None:
        if not self.rows:
            self.step_s, self.source, self.columns = tr.step_s, tr.source, tr.columns
            self.start_s = tr.start_s
        self.rows += len(tr)
        self.end_s = tr.end_s
        for name in self.sum:
            col = getattr(tr, name)
            self.sum[name] += float(np.nansum(col))
            self.max[name] = max(self.max[name], float(np.max(col)))
        for name in self._SPANS:
            col = getattr(tr, name)
            ok = col[~np.isnan(col)]
            if ok.size:
                self.lo[name] = min(self.lo[name], float(ok.min()))
                self.hi[name] = max(self.hi[name], float(ok.max()))
                self.total[name] += float(ok.sum())
                self.count[name] += int(ok.size)


def summarise(trace: Trace | TraceStats, currency: str) -> list[str]:
    """Human-readable lines: size, period, energy totals and value ranges."""
    if isinstance(trace, Trace):
        st = TraceStats()
        st.add(trace)
    else:
        st = trace
    days = (st.end_s - st.start_s) / 86400
    start, end = iso_utc(np.array([st.start_s, st.end_s]))
    lines = [
        f"{st.source}: {st.rows} rows, step {st.step_s:g} s",
        f"period {start} .. {end} ({days:.2f} days)",
    ]
    defaulted = [
        c
        for c in ("heat_demand_w", "outdoor_c", "import_price", "export_price",
                  "hashvalue_sats_per_th_day", "btc_price")
        if c not in st.columns and not (c == "hashvalue_sats_per_th_day"
                                        and "hashprice" in st.columns)
    ]
    if defaulted:
        lines.append(f"not in file (defaults): {', '.join(defaulted)}")
    for label, name in (("pv", "pv_w"), ("load", "load_w"), ("heat demand", "heat_demand_w")):
        kwh = st.sum[name] * st.step_s / 3.6e6
        mean = st.sum[name] / st.rows
        lines.append(
            f"{label:<12} {kwh:10.1f} kWh   mean {mean:8.1f} W   max {st.max[name]:8.1f} W"
        )

    def span(label: str, name: str, unit: str) -> None:
        if not st.count[name]:
            lines.append(f"{label:<12} (none)")
        else:
            lo, mean, hi = st.lo[name], st.total[name] / st.count[name], st.hi[name]
            lines.append(f"{label:<12} min {lo:.5g}  mean {mean:.5g}  max {hi:.5g} {unit}")

    span("outdoor", "outdoor_c", "°C")
    span("import", "import_price", f"{currency}/kWh")
    span("export", "export_price", f"{currency}/kWh")
    span("hashvalue", "hashvalue_sats_per_th_day", "sats/(TH/s·day)")
    span("btc price", "btc_price", f"{currency}/BTC")
    if st.count["hashprice"]:
        span("hashprice", "hashprice", f"{currency}/(TH/s·day)")
    if st.count["dr_limit_w"]:
        lines.append(
            f"dr limit     {st.count['dr_limit_w']} capped rows,"
            f" lowest {st.lo['dr_limit_w']:g} W"
        )
    else:
        lines.append("dr limit     none")
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a trace (errors propagate as InputError) and print its summary; the trace
    is read in chunks, so memory does not grow with its length."""
    cfg = load_site(args.config)
    st = TraceStats()
    for chunk in iter_trace(args.trace, cfg):
        st.add(chunk)
    print("\n".join(summarise(st, cfg.site.currency)))
    return 0
