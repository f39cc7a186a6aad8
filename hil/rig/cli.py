"""`python -m hil.rig run SCENARIO...` / `hearth hil run ...`: run scenarios, write reports.

Exit code 0 when every scenario passed, 1 when a check failed, 2 for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
from pathlib import Path

from controller.errors import InputError, Problem
from hil.rig.broken import BREAKS
from hil.rig.checks import run_checks
from hil.rig.report import summary_line, write_reports
from hil.rig.runner import run_scenario
from hil.rig.scenario import ROOT, load_scenario

SCENARIOS = ROOT / "hil" / "scenarios"


def _run(a: argparse.Namespace) -> int:
    if os.environ.get("HIL_TARGET"):
        raise InputError("HIL_TARGET", [Problem("", "running against real hardware is not "
                                                "implemented yet; unset HIL_TARGET")])
    paths: list[Path] = a.scenarios or sorted(SCENARIOS.glob("*.toml"))
    scenarios = [load_scenario(p) for p in paths]  # all validated before anything runs
    docs = []
    for s in scenarios:
        if a.speed is not None:
            s = dataclasses.replace(s, speed=a.speed)
        out = a.out / s.name
        rec = asyncio.run(run_scenario(s, out, a.controller))
        doc = write_reports(rec, run_checks(rec), a.controller, out)
        docs.append(doc)
        print(summary_line(doc), flush=True)
    (a.out / "summary.json").write_text(json.dumps(docs, indent=2) + "\n")
    return 0 if all(d["passed"] for d in docs) else 1


def add_arguments(ap: argparse.ArgumentParser) -> None:
    sub = ap.add_subparsers(dest="hil_command", required=True)
    run = sub.add_parser("run", help="run scenarios against `hearth run` and the plant")
    run.add_argument("scenarios", nargs="*", type=Path,
                     help="scenario TOML files (default: all in hil/scenarios)")
    run.add_argument("--speed", type=float, help="plant time per real second (override)")
    run.add_argument("--out", type=Path, default=ROOT / "out" / "hil")
    run.add_argument("--controller", default="real", choices=("real", *BREAKS),
                     help="a deliberately broken policy, for the rig's self-test")
    run.set_defaults(func=_run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_arguments(subparsers.add_parser("hil", help="hardware-in-the-loop scenarios"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hil.rig", description=__doc__.splitlines()[0])
    add_arguments(ap)
    a = ap.parse_args(argv)
    try:
        rc: int = a.func(a)
    except InputError as e:
        print(e)
        return 2
    return rc
