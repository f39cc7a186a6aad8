"""`hearth` command line. Thin on purpose: parse arguments, call a module, map errors.

Exit codes: 0 ok, 1 a check found a problem (e.g. a safety violation in a simulation),
2 bad input (config, trace, arguments) with every problem printed to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controller.errors import InputError, Problem


def _config_check(args: argparse.Namespace) -> int:
    from controller.config import load_site

    cfg = load_site(args.file)
    print(f"{args.file}: ok — site {cfg.site.id!r}, {len(cfg.miners)} miner(s), "
          f"{cfg.miner_capacity_w:.0f} W miner capacity, import limit "
          f"{cfg.site.import_limit_w:.0f} W"
          f"{', battery' if cfg.battery else ''}{', tank' if cfg.tank else ''}")
    return 0


def _config_schema(args: argparse.Namespace) -> int:
    from controller.config import config_json_schema

    print(json.dumps(config_json_schema(), indent=2))
    return 0


def _sim(args: argparse.Namespace) -> int:
    from controller.config import load_site
    from controller.sim.report import summarize, write_summary
    from controller.sim.runner import SimConsumer, simulate
    from controller.sim.stream import TimelineWriter
    from controller.trace.reader import Trace, TraceChunks, iter_trace, read_trace

    cfg = load_site(args.config)
    # Streamed in chunks (memory flat in the trace's length), except with a plan: its
    # forecast and the perfect-foresight bound look at the whole trace.
    trace: Trace | TraceChunks = read_trace(args.trace, cfg) if args.plan else \
        iter_trace(args.trace, cfg)
    consumers: list[SimConsumer] = []
    ledger = None
    if args.ledger:
        from controller.ledger.sim import SimLedgerSink

        if isinstance(trace, TraceChunks):
            for _ in trace:  # a trace with a problem must not leave half a ledger
                pass
        ledger = SimLedgerSink(cfg, args.ledger)
        consumers.append(ledger)
    if args.timeline:
        consumers.append(TimelineWriter(args.timeline))
    result = simulate(cfg, trace, args.controller, progress=None, plan=args.plan,
                      consumers=consumers, keep_columns=False)
    summary = summarize(result)
    if args.plan:
        from controller.plan.bound import perfect_foresight

        assert isinstance(trace, Trace)
        bound = perfect_foresight(cfg, trace).value
        summary["perfect_foresight_value"] = f"{bound:.2f}"
        summary["regret"] = f"{bound - float(summary['net_value']):.2f}"
    if ledger is not None:
        led = ledger.result()
        print(f"ledger: {led.samples} rows accounted in {args.ledger} "
              f"({led.skipped} were already there)", file=sys.stderr)
    if args.summary:
        write_summary(summary, args.summary)
    else:
        print(json.dumps(summary, indent=2))
    bad = summary["import_limit_violations"] + (
        summary["min_on_off_violations"] if args.controller == "hearth" else 0
    )
    return 1 if bad and args.controller == "hearth" else 0


def _compare(args: argparse.Namespace) -> int:
    from controller.config import load_site
    from controller.sim.compare import bound_summary, render_comparison
    from controller.sim.quality import QualitySums
    from controller.sim.report import summarize
    from controller.sim.runner import POLICIES, simulate
    from controller.trace.reader import Trace, TraceChunks, iter_trace, read_trace

    cfg = load_site(args.config)
    policies = [p.strip() for p in args.controllers.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise InputError("hearth compare", [Problem(
            "--controllers", f"unknown controller(s) {unknown}; choose from "
            f"{', '.join(POLICIES)}" if unknown else "names no controller")])
    # Streamed (every run, the loose bound and the ceiling read the file in chunks: memory
    # flat in its length), except with a plan: its forecast looks at the whole trace.
    trace: Trace | TraceChunks = read_trace(args.trace, cfg) if args.plan != "none" else \
        iter_trace(args.trace, cfg)
    step_s = trace.step_s if isinstance(trace, Trace) else next(iter(trace)).step_s

    def run(policy: str, plan: str | None = None) -> dict[str, Any]:
        q = QualitySums(cfg, step_s)  # streamed: a year's rows are never all kept
        r = simulate(cfg, trace, policy, progress=None, plan=plan, keep_columns=False,
                     consumers=[q])
        return summarize(r) | {"quality": q.figures(r.starts)}

    summaries = [run(p) for p in policies]
    if args.plan != "none":
        summaries.append(run("hearth", args.plan))
    if not args.no_bound:
        from controller.plan.bound import LooseBoundTooLong, loose_bound

        try:
            summaries.append(bound_summary(summaries[0], loose_bound(cfg, trace)))
        except LooseBoundTooLong as err:
            print(f"note: {err} (--no-bound skips it)", file=sys.stderr)
    if not args.no_ceiling:
        from controller.plan.ceiling import ceiling
        from controller.sim.compare import with_ceiling

        summaries = with_ceiling(summaries, ceiling(cfg, trace, time_limit_s=args.time_limit))
    print(render_comparison(summaries))
    if args.summary:
        Path(args.summary).write_text(json.dumps(summaries, indent=2) + "\n")
    return 0


def _bound_problems(args: argparse.Namespace) -> list[Problem]:
    """What is wrong with `hearth bound`'s numeric arguments, by option name."""
    out = []
    if args.window_steps is not None and args.window_steps < 1:
        out.append(Problem("--window-steps", f"must be at least 1 (is {args.window_steps})"))
    if args.jobs is not None and args.jobs < 1:
        out.append(Problem("--jobs", f"must be at least 1 (is {args.jobs})"))
    if not args.time_limit > 0:
        out.append(Problem("--time-limit", f"must be above 0 s (is {args.time_limit:g})"))
    if not args.restart_cost >= 0:
        out.append(Problem("--restart-cost", f"must not be negative (is {args.restart_cost:g})"))
    return out


def _bound(args: argparse.Namespace) -> int:
    from controller.config import load_site
    from controller.plan.ceiling import ceiling, render_ceiling
    from controller.trace.reader import iter_trace

    problems = _bound_problems(args)
    if problems:
        raise InputError("hearth bound", problems)
    cfg = load_site(args.config)
    # Streamed: the windows are solved as the rows arrive and only running sums are kept,
    # so memory is flat in the trace's length. A first pass validates the whole file: a
    # bad row near its end fails in seconds, not after the solves (and writes nothing).
    trace = iter_trace(args.trace, cfg)
    for _ in trace:
        pass
    objectives = ("capture", "value") if args.objective == "both" else (args.objective,)
    if "capture" not in objectives:
        objectives = ("capture", *objectives)
    res = ceiling(cfg, trace, window_steps=args.window_steps, time_limit_s=args.time_limit,
                  objectives=objectives, allow_import=args.allow_import,
                  restart_cost=args.restart_cost, jobs=args.jobs,
                  schedule_path=args.schedule)
    loose = None
    if not args.no_loose:
        from controller.plan.bound import LooseBoundTooLong, loose_bound

        try:
            loose = loose_bound(cfg, trace)
        except LooseBoundTooLong as err:
            res.notes.append(f"{err} (--no-loose skips it)")
    summary = res.summary()
    if loose is not None:
        summary["loose_bound_value"] = round(loose, 2)
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    print(render_ceiling(summary))
    return 0


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from controller.runtime.assemble import serve
    from controller.runtime.startup import read_start

    start = read_start(args.config)  # safe mode for a file that does not load (exit 2: none)
    return asyncio.run(serve(start, args.config, ledger=not args.no_ledger,
                             hmi=not args.no_hmi))


def _doctor(args: argparse.Namespace) -> int:
    from controller.config import load_site
    from controller.runtime.doctor import run_doctor

    return run_doctor(load_site(args.config), args.config)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; `command` (the first word of argv, when known) limits the
    plugins loaded to that one."""
    p = argparse.ArgumentParser(prog="hearth", description=__doc__.splitlines()[0])
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default: WARNING")
    sub = p.add_subparsers(dest="command", required=True)

    cfg = sub.add_parser("config", help="validate a site file or print its schema")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    chk = cfg_sub.add_parser("check", help="validate a site TOML file; every error with its path")
    chk.add_argument("file")
    chk.set_defaults(func=_config_check)
    sch = cfg_sub.add_parser("schema", help="print the JSON schema of the site file")
    sch.set_defaults(func=_config_schema)

    sim = sub.add_parser("sim", help="run a controller against the plant model on a trace")
    sim.add_argument("--config", required=True, help="site TOML")
    sim.add_argument("--trace", required=True, help="trace CSV (.csv or .csv.gz)")
    sim.add_argument("--timeline", help="write the per-step timeline CSV here")
    sim.add_argument("--summary", help="write the summary JSON here (default: stdout)")
    sim.add_argument("--controller", choices=["hearth", "evcc", "evcc-all", "threshold"],
                     default="hearth",
                     help="evcc: the evcc-style peer (its PV mode, one miner per loadpoint, "
                          "one loadpoint per 30 s cycle as evcc does); evcc-all: every miner "
                          "each cycle; threshold: an on/off rule (docs/design.md)")
    sim.add_argument("--plan", choices=["persistence", "perfect"],
                     help="drive hearth with the day-ahead plan (LP) on this forecast; the "
                          "summary adds the perfect-foresight value and the regret")
    sim.add_argument("--ledger", metavar="DB_URL",
                     help="also write the revenue ledger (sqlite:///path or "
                          "postgresql+psycopg://...)")
    sim.set_defaults(func=_sim)

    run = sub.add_parser("run", help="the real-time service: devices, control loop, miners")
    run.add_argument("--config", required=True, help="site TOML")
    run.add_argument("--no-ledger", action="store_true", help="do not record revenue")
    run.add_argument("--no-hmi", action="store_true", help="do not serve the wall-tablet HMI")
    run.set_defaults(func=_run)

    doc = sub.add_parser("doctor", help="check devices, miners and the database, in words")
    doc.add_argument("--config", required=True, help="site TOML")
    doc.set_defaults(func=_doctor)

    cmp_ = sub.add_parser("compare", help="hearth, the evcc-style peer, the threshold "
                          "baseline, hearth with the day-ahead plan and the perfect-foresight "
                          "optimum side by side, on one plant and one trace")
    cmp_.add_argument("--config", required=True)
    cmp_.add_argument("--trace", required=True)
    cmp_.add_argument("--controllers", default="hearth,evcc,threshold",
                      help="comma-separated controllers to run (default: "
                           "hearth,evcc,threshold; also evcc-all)")
    cmp_.add_argument("--summary", help="write the summaries as a JSON list here")
    cmp_.add_argument("--plan", choices=["persistence", "perfect", "none"],
                      default="persistence",
                      help="also run hearth with the day-ahead plan on this forecast")
    cmp_.add_argument("--no-bound", action="store_true",
                      help="skip the loose bound (the relaxed LP over the whole trace)")
    cmp_.add_argument("--no-ceiling", action="store_true",
                      help="skip the ceiling (`hearth bound`'s MILP) and the %% of ceiling rows")
    cmp_.add_argument("--time-limit", type=float, default=2.0, metavar="S",
                      help="ceiling: solver time per window and objective; the ceiling is "
                           "a proven bound however short (default 2)")
    cmp_.set_defaults(func=_compare)

    bnd = sub.add_parser("bound", help="the ceiling: perfect foresight over the plant's miner "
                         "model (a MILP in rolling windows): most surplus captured without "
                         "import, and most net value")
    bnd.add_argument("--config", required=True, help="site TOML")
    bnd.add_argument("--trace", required=True, help="trace CSV (.csv or .csv.gz)")
    bnd.add_argument("--objective", choices=["both", "capture", "value"], default="both")
    bnd.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                     help="solver time per window and objective; past it the proven bound "
                          "counts and the gap is reported (default 10)")
    bnd.add_argument("--window-steps", type=int, metavar="N",
                     help="steps per window (default: solar midnight to solar midnight, cut "
                          "into pieces of at most 240 steps)")
    bnd.add_argument("--jobs", type=int, help="windows solved at once (default: up to 2)")
    bnd.add_argument("--allow-import", action="store_true",
                     help="capture: let the miners import (then it bounds every policy)")
    bnd.add_argument("--restart-cost", type=float, default=0.0, metavar="MONEY",
                     help="value: wear cost per miner start, in the site currency")
    bnd.add_argument("--schedule", help="write the per-step miner powers (CSV) here")
    bnd.add_argument("--summary", help="write the figures as JSON here")
    bnd.add_argument("--no-loose", action="store_true",
                     help="skip the loose bound (the relaxed LP) beside the ceiling (with a "
                          "battery or tank one LP over the whole trace: see docs/plan.md)")
    bnd.set_defaults(func=_bound)

    from controller.bridge.cli import register as register_installer
    from controller.devices.cli import register as register_devices
    from controller.fleet.cli import register as register_fleet
    from controller.ledger.cli import register as register_ledger
    from controller.miners.cli import register as register_miners
    from controller.satellite.cli import register as register_satellite
    from controller.trace.cli import register as register_trace

    register_trace(sub)
    register_ledger(sub)
    register_devices(sub)
    register_miners(sub)
    register_installer(sub)
    register_satellite(sub)
    register_fleet(sub)

    from hmi.cli import register as register_hmi

    register_hmi(sub)

    _register_plugins(sub, command)
    return p


PLUGIN_GROUP = "hearth.commands"


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand a command line names (skipping the global --log-level's value)."""
    words = iter(argv)
    for w in words:
        if w == "--log-level":
            next(words, None)
        elif not w.startswith("-"):
            return w
    return None


def _register_plugins(sub: Any, command: str | None) -> None:
    """Commands of the rig (`demo`, `hil`, `emulate`) come as entry points, so the product
    never imports `hil/` (dependencies point one way); only the one the command line
    names is loaded (`hearth run` stays light), all of them when none is named (help)."""
    if command in sub.choices:
        return  # a command of the product itself: no need to scan installed metadata
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        if command is None or ep.name == command:
            ep.load()(sub)


def setup_logging(level: str) -> None:
    """Plain lines on stderr (journald adds the time on the Pi)."""
    logging.basicConfig(level=getattr(logging, level),
                        format="%(levelname)s %(name)s: %(message)s")
    # pymodbus logs every failed request itself, with hex dumps; Hearth logs the same
    # failure once, with the device name.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_command_word(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        rc: int = args.func(args)
    except InputError as err:
        print(err.render(), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
