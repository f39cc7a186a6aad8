"""Reports of a rig run: JSON (figures + every check) and JUnit XML (one testcase per check).

Key figures come from the recorded timeline: energy the miners took, how much of it was
imported, the trips `hearth run` logged, recovery times. A skipped check is reported as
skipped in both formats, never as passed.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from hil.rig.checks import Check
from hil.rig.runner import RunRecord


def figures(rec: RunRecord) -> dict[str, Any]:
    miner_wh = import_wh = captured_wh = surplus_wh = 0.0
    for a, b in zip(rec.rows, rec.rows[1:], strict=False):
        dt_h = (b.t_s - a.t_s) / 3600.0
        mw = sum(a.state.miner_w.values())
        miner_wh += mw * dt_h
        import_wh += max(0.0, min(a.state.grid_w, mw)) * dt_h
        # Surplus: PV the house does not use (the battery, if any, still gets its share
        # through the controller's policy; this is the plain upper bound).
        sw = max(a.state.pv_w - a.state.load_w, 0.0) if math.isfinite(a.state.pv_w) else 0.0
        surplus_wh += sw * dt_h
        captured_wh += min(mw, sw) * dt_h
    log_path = rec.out / "hearth-run.log"
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    trips: dict[str, int] = {}
    for m in re.finditer(r"trip (\w+):", text):
        trips[m.group(1)] = trips.get(m.group(1), 0) + 1
    return {"miner_energy_wh": round(miner_wh, 3), "import_caused_wh": round(import_wh, 3),
            "captured_from_surplus_wh": round(captured_wh, 3),
            "surplus_wh": round(surplus_wh, 3),
            "trip_count": sum(trips.values()),
            "trips": trips, "controller_restarts": rec.restarts,
            "controller_exit_code": rec.exit_code, "controller_ready_s": rec.ready_s,
            "run_s": round(rec.rows[-1].t_s, 1) if rec.rows else None,
            "timeline_rows": len(rec.rows)}


def to_json(rec: RunRecord, checks: list[Check], controller: str) -> dict[str, Any]:
    figs = figures(rec)
    for c in checks:
        figs.update({f"{c.name}.{k}": v for k, v in c.figures.items()})
    failed = [c.name for c in checks if not c.passed]
    return {
        "scenario": rec.scenario.name, "description": rec.scenario.description,
        "controller": controller, "passed": not failed, "failed": failed,
        "duration_s": rec.scenario.duration_s,
        "faults": [{"kind": f.kind, "miner": f.miner, "on_s": round(on, 2),
                    "off_s": round(off, 2)} for f, on, off in rec.fault_times],
        "figures": figs,
        "checks": [{"name": c.name, "status": "skipped" if c.skipped else
                    ("passed" if c.passed else "failed"), "detail": c.detail,
                    "violations": c.violations} for c in checks],
    }


def write_reports(rec: RunRecord, checks: list[Check], controller: str, out: Path
                  ) -> dict[str, Any]:
    doc = to_json(rec, checks, controller)
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    suite = ET.Element("testsuite", name=f"hil.{rec.scenario.name}", tests=str(len(checks)),
                       failures=str(sum(not c.passed for c in checks)),
                       skipped=str(sum(c.skipped for c in checks)))
    for c in checks:
        tc = ET.SubElement(suite, "testcase", classname=f"hil.{rec.scenario.name}",
                           name=c.name)
        if c.skipped:
            ET.SubElement(tc, "skipped", message=c.detail)
        elif not c.passed:
            f = ET.SubElement(tc, "failure", message=c.detail)
            f.text = "\n".join(c.violations)
        else:
            ET.SubElement(tc, "system-out").text = c.detail
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
    return doc


def summary_line(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    rec = f.get("recovery.worst_recovery_s")
    trips = sum(f["trips"].values())
    return (f"{doc['scenario']:<24} {'PASS' if doc['passed'] else 'FAIL':<5} "
            f"miners {f['miner_energy_wh']:7.2f} Wh (from surplus "
            f"{f.get('captured_from_surplus_wh', 0.0):6.2f})  import caused "
            f"{f['import_caused_wh']:6.2f} Wh  trips {trips:3d}  recovery "
            + (f"{rec:4.1f} s" if rec is not None else "  - ")
            + (f"  ready {ready:4.1f} s" if (ready := f.get("controller_ready_s")) is not None
               else "")
            + (f"  ran {ran:3.0f} s" if (ran := f.get("run_s")) is not None else "")
            + (f"  failed: {', '.join(doc['failed'])}" if doc["failed"] else ""))
