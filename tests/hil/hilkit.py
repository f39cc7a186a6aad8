"""What the HIL tests share: run a shipped scenario by name and read its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.rig.checks import run_checks
from hil.rig.report import write_reports
from hil.rig.runner import run_scenario
from hil.rig.scenario import ROOT, load_scenario

SCEN = ROOT / "hil" / "scenarios"


async def run(name: str, out: Path, controller: str = "real") -> dict[str, Any]:
    """Run hil/scenarios/NAME.toml against `controller` ("real" or a broken policy) in
    OUT/NAME-CONTROLLER; the report document (as `hearth hil run` writes it)."""
    s = load_scenario(SCEN / f"{name}.toml")
    d = out / f"{name}-{controller}"
    rec = await run_scenario(s, d, controller)
    return write_reports(rec, run_checks(rec), controller, d)


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    """Check name -> "pass" / "fail" / "skip"."""
    return {c["name"]: c["status"] for c in doc["checks"]}
