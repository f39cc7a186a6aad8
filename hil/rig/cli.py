"""`python -m hil.rig run SCENARIO...` / `hearth hil run ...`: run scenarios, write reports.

Exit code 0 when every scenario passed, 1 when a check failed, 2 for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from controller.errors import InputError
from hil.rig.broken import BREAKS
from hil.rig.checks import run_checks
from hil.rig.report import summary_line, write_reports
from hil.rig.runner import run_scenario
from hil.rig.scenario import ROOT, load_scenario
from hil.rig.target import (
    load_target,
    needs_emulator,
    run_on_target,
    target_from_env,
    write_skipped,
)

SCENARIOS = ROOT / "hil" / "scenarios"


def _run(a: argparse.Namespace) -> int:
    # HIL_TARGET=site.toml: real hardware (hil/rig/target.py); scenarios that need the
    # emulator are reported skipped, never passed.
    target = target_from_env()
    if target is not None:
        load_target(target[0])  # a bad target fails before anything runs
    # The controller's site file gets paths under it, and a site file wants them absolute.
    a.out = a.out.resolve()
    paths: list[Path] = a.scenarios or sorted(SCENARIOS.glob("*.toml"))
    scenarios = [load_scenario(p) for p in paths]  # all validated before anything runs
    docs = []
    for s in scenarios:
        if a.speed is not None:
            s = dataclasses.replace(s, speed=a.speed)
        out = a.out / s.name
        if target is not None:
            reason = needs_emulator(s)
            if reason is not None:
                doc = write_skipped(s, reason, out)
                docs.append(doc)
                print(f"{s.name:<24} SKIP  {reason}", flush=True)
                continue
            rec = asyncio.run(run_on_target(s, target[0], out, a.controller, target[1]))
        else:
            rec = asyncio.run(run_scenario(s, out, a.controller))
        doc = write_reports(rec, run_checks(rec), a.controller, out)
        docs.append(doc)
        print(summary_line(doc), flush=True)
    (a.out / "summary.json").write_text(json.dumps(docs, indent=2) + "\n")
    # One JUnit file for CI with every scenario's suite (passed, failed and skipped).
    root = ET.Element("testsuites", name="hil")
    for d in docs:
        junit = a.out / d["scenario"] / "junit.xml"
        if junit.exists():
            root.extend(ET.parse(junit).getroot())
    ET.ElementTree(root).write(a.out / "junit.xml", encoding="utf-8", xml_declaration=True)
    return 0 if all(d["passed"] is not False for d in docs) else 1


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
