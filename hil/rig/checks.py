"""The safety and quality assertions, judged on a recorded run (never on the live process).

Each check returns a `Check`: passed or not, what it measured, and every violation with its
time, so a report says why. Tolerances are the plant's sampling (0.2 s steps), the
controller's tick and its meter polling; they are named and printed, not hidden.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from controller.config import parse_site
from hil.rig.runner import Row, RunRecord

STALE_FAULTS = ("meter_silent", "modbus_garbage", "modbus_exception")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    violations: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    skipped: bool = False


def _pausable(rec: RunRecord) -> list[str]:
    return [m["name"] for m in rec.site["miners"]
            if m.get("driver", {}).get("api") != "axeos"]


def check_import_limit(rec: RunRecord) -> Check:
    """Import above the limit is a violation when the miners could have prevented it."""
    cfg = parse_site(rec.site, "scenario")
    limit = cfg.site.import_limit_w
    bad = [f"t={r.t_s:.1f}s grid {r.state.grid_w:.0f} W > {limit:.0f} W with miners at "
           f"{sum(r.state.miner_w.values()):.0f} W"
           for r in rec.rows
           if r.state.grid_w > limit + 1.0 and sum(r.state.miner_w.values()) > 1.0]
    peak = max((r.state.grid_w for r in rec.rows), default=0.0)
    return Check("import_limit", not bad, f"limit {limit:.0f} W, peak import {peak:.0f} W",
                 bad[:10], {"peak_import_w": peak, "limit_w": limit})


def check_tank_max(rec: RunRecord) -> Check:
    tank = rec.site.get("tank")
    if not tank:
        return Check("tank_max", True, "no tank on this site", skipped=True)
    mx = float(tank["max_c"])
    bad = [f"t={r.t_s:.1f}s tank {r.state.tank_c:.2f} °C" for r in rec.rows
           if r.state.tank_c > mx]
    return Check("tank_max", not bad, f"max {mx} °C", bad[:10])


def check_stale_to_zero(rec: RunRecord) -> Check:
    """Every pausable miner at 0 W within the stale timeout (+ stop time + polling)."""
    stale = float(rec.controller_site.get("control", {}).get("stale_timeout_s", 10.0))
    pausable = _pausable(rec)
    bad: list[str] = []
    worst = 0.0
    n = 0
    for f, on, off in rec.fault_times:
        if f.kind not in STALE_FAULTS:
            continue
        n += 1
        stop_s = max(float(m.get("stop_s", 0.0)) for m in rec.site["miners"]
                     if m["name"] in pausable)
        deadline = stale + stop_s + 2 * float(rec.scenario.tick_s) + 1.5
        if off - on < deadline:
            bad.append(f"{f.kind} at {on:.1f}s lasts {off - on:.1f}s, shorter than the "
                       f"deadline {deadline:.1f}s: the scenario cannot test this")
            continue
        zero_at = next((r.t_s for r in rec.rows if on <= r.t_s < off and
                        all(r.state.miner_w.get(m, 0.0) == 0.0 for m in pausable)), None)
        if zero_at is None:
            bad.append(f"{f.kind} at {on:.1f}s: miners {pausable} never reached 0 W "
                       f"before the fault cleared at {off:.1f}s")
            worst = off - on
        else:
            worst = max(worst, zero_at - on)
            if zero_at - on > deadline:
                bad.append(f"{f.kind} at {on:.1f}s: 0 W only after {zero_at - on:.1f}s "
                           f"(deadline {deadline:.1f}s)")
    if n == 0:
        return Check("stale_to_zero", True, "no meter fault in this scenario", skipped=True)
    return Check("stale_to_zero", not bad,
                 f"{n} meter fault(s), worst time to 0 W {worst:.1f}s", bad,
                 {"worst_to_zero_s": worst})


def check_min_on_off(rec: RunRecord) -> Check:
    """Switches sooner than min_on_s/min_off_s, except forced ones while a fault is on."""
    bad: list[str] = []
    switches = 0
    for m in rec.site["miners"]:
        name = m["name"]
        if m.get("driver", {}).get("api") == "axeos":
            continue
        min_on, min_off = float(m.get("min_on_s", 300)), float(m.get("min_off_s", 300))
        last_t: float | None = None
        last_p: bool | None = None
        for r in rec.rows:
            p = r.paused[name]
            if last_p is not None and p != last_p:
                switches += 1
                held = r.t_s - last_t if last_t is not None else float("inf")
                need = min_off if not p else min_on  # resumed after an off period, or v.v.
                forced = p and bool(r.faults)
                if held + 0.5 < need and not forced and last_t is not None:
                    bad.append(f"t={r.t_s:.1f}s {name} {'paused' if p else 'resumed'} "
                               f"after {held:.1f}s (min {need:.0f}s)")
                last_t = r.t_s
            elif last_p is None:
                last_t = None
            last_p = p
    return Check("min_on_off", not bad, f"{switches} switches", bad, {"switches": switches})


def _in_band(rec: RunRecord, r: Row) -> bool:
    margin = float(rec.controller_site.get("control", {}).get("export_margin_w", 50.0))
    cap = sum(float(m["max_power_w"]) for m in rec.site["miners"])
    at_max = sum(r.state.miner_w.values()) >= cap - rec.scenario.recovery_band_w
    return abs(r.state.grid_w + margin) <= rec.scenario.recovery_band_w or (
        at_max and r.state.grid_w < 0)


def check_recovery(rec: RunRecord) -> Check:
    """Normal control resumes in time: the controller acts on a miner again (a resume or
    target write), or the grid is already at its set point. The plant's settle time
    (boot + ramp) is reported as a figure, not judged: a real S9 boots for 90 s."""
    bad: list[str] = []
    worst = settle_worst = 0.0
    for f, _on, off in rec.fault_times:
        after = [r for r in rec.rows if r.t_s >= off and not r.faults and r.controller_up]
        base = after[0].writes if after else {}
        acted = next((r.t_s for r in after if _in_band(rec, r) or any(
            r.writes.get(n, 0) > base.get(n, 0) and not r.paused[n] for n in r.writes)),
            None)
        settled = next((r.t_s for r in after if _in_band(rec, r)), None)
        if settled is not None:
            settle_worst = max(settle_worst, settled - off)
        if acted is None:
            bad.append(f"{f.kind} cleared at {off:.1f}s: the controller never resumed")
            continue
        worst = max(worst, acted - off)
        if acted - off > rec.scenario.recovery_s:
            bad.append(f"{f.kind} cleared at {off:.1f}s: control resumed after "
                       f"{acted - off:.1f}s (limit {rec.scenario.recovery_s:.0f}s)")
    if not rec.fault_times:
        return Check("recovery", True, "no faults in this scenario", skipped=True)
    return Check("recovery", not bad, f"control resumed within {worst:.1f}s, grid back at "
                 f"its set point within {settle_worst:.1f}s", bad,
                 {"worst_recovery_s": worst, "worst_settle_s": settle_worst})


def check_ledger(rec: RunRecord) -> Check:
    """Intervals contiguous (none lost) and each start accounted once (none doubled)."""
    url = rec.ledger_url or ""
    if not url.startswith("sqlite:///"):
        return Check("ledger", True, f"ledger not on SQLite ({url})", skipped=True)
    path = url.removeprefix("sqlite:///")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return Check("ledger", False, f"cannot open the ledger {path}: {e}")
    try:
        rows: list[Any] = con.execute(
            "SELECT start_s, duration_s, covered_s / 1000.0 FROM ledger_interval i "
            "WHERE NOT EXISTS (SELECT 1 FROM ledger_interval j WHERE j.supersedes_id = i.id) "
            "ORDER BY start_s").fetchall()
        states = [json.loads(r[0]) for r in con.execute("SELECT state FROM ledger_state")]
    except (sqlite3.Error, ValueError) as e:
        return Check("ledger", False, f"cannot read the ledger: {e}")
    finally:
        con.close()
    # covered_s is stored in milliseconds (FixedDecimal scale 3). The writer checkpoints
    # the interval still open; it counts as the last one.
    for st in states:
        acc = st.get("acc") if isinstance(st, dict) else None
        if acc:
            rows.append((int(acc["start_s"]), int(acc["duration_s"]),
                         float(acc["covered_s"])))
    bad: list[str] = []
    starts = [int(r[0]) for r in rows]
    dup = sorted({s for s in starts if starts.count(s) > 1})
    bad += [f"interval {s} accounted {starts.count(s)} times" for s in dup]
    for (s0, d0, _), (s1, _, _) in itertools.pairwise(sorted(set(rows))):
        if s1 != s0 + d0 and s1 != s0:
            bad.append(f"gap: interval {s0}+{d0}s is followed by {s1} (intervals lost)")
    covered = sum(float(r[2]) for r in rows)
    if not rows:
        bad.append("no ledger interval written or open")
    elif covered > rec.scenario.duration_s + 2.0:
        bad.append(f"{covered:.1f} s accounted in a {rec.scenario.duration_s:.0f} s run "
                   "(time counted twice)")
    return Check("ledger", not bad, f"{len(rows)} intervals (incl. the open one), "
                 f"{covered:.1f} s covered", bad,
                 {"intervals": len(rows), "covered_s": covered})


ALL = {"import_limit": check_import_limit, "tank_max": check_tank_max,
       "stale_to_zero": check_stale_to_zero, "min_on_off": check_min_on_off,
       "recovery": check_recovery, "ledger": check_ledger}


def run_checks(rec: RunRecord) -> list[Check]:
    return [ALL[c](rec) for c in rec.scenario.checks]
