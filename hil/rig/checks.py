"""The safety and quality assertions, judged on a recorded run (never on the live process).

Each check returns a `Check`: passed or not, what it measured, and every violation with its
time, so a report says why. Tolerances are the plant's sampling (0.2 s steps), the
controller's tick and its meter polling; they are named and printed, not hidden.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from controller.config import parse_site
from controller.miners.factory import driver_can_pause
from hil.rig.runner import Row, RunRecord
from hil.site import SiteState

STALE_FAULTS = ("meter_silent", "modbus_garbage", "modbus_exception", "rtu_noise",
                "rtu_silent")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    violations: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    skipped: bool = False


def _pausable(rec: RunRecord) -> list[str]:
    return [m["name"] for m in rec.site["miners"] if driver_can_pause(m.get("driver", {}))]


def _floor_w(rec: RunRecord) -> dict[str, float]:
    """Miners whose driver cannot pause (AxeOS) are held at their minimum, not off."""
    return {m["name"]: float(m["min_power_w"]) for m in rec.site["miners"]
            if not driver_can_pause(m.get("driver", {}))}


def check_import_limit(rec: RunRecord) -> Check:
    """Import above the limit is a violation when the miners could have prevented it."""
    cfg = parse_site(rec.site, "scenario")
    limit = cfg.site.import_limit_w
    # A miner that ignores its commands cannot be held to them: its power is judged by
    # check_rogue_miner; here only the miners that obey count, above their floor, and
    # only when shedding them would have been enough.
    bad = [f"t={r.t_s:.1f}s grid {r.state.grid_w:.0f} W > {limit:.0f} W with miners at "
           f"{sum(r.state.miner_w.values()):.0f} W"
           for r in rec.rows
           if r.state.grid_w > limit + 1.0 and _obeying_w(rec, r) > 1.0
           and (not _rogues_at(rec, r.t_s) or r.state.grid_w - _obeying_w(rec, r) <= limit)]
    peak = max((r.state.grid_w for r in rec.rows), default=0.0)
    return Check("import_limit", not bad, f"limit {limit:.0f} W, peak import {peak:.0f} W",
                 bad[:10], {"peak_import_w": peak, "limit_w": limit})


def _rogues_at(rec: RunRecord, t_s: float) -> set[str]:
    return {f.miner for f, on, off in rec.fault_times
            if f.kind == "miner_ignores_target" and f.miner and on <= t_s < off}


def _obeying_w(rec: RunRecord, r: Row) -> float:
    """Power of the miners the controller could still shed (all of them, normally)."""
    rogues = _rogues_at(rec, r.t_s)
    if not rogues:
        return sum(r.state.miner_w.values())
    floor = _floor_w(rec)
    return sum(max(0.0, w - floor.get(n, 0.0)) for n, w in r.state.miner_w.items()
               if n not in rogues)


MINER_POLL_S = 2.0  # the fleet reads each miner every 2 s (controller/runtime/fleet.py)
PROVOKED_MIN_S = 2.0  # a rogue alone above the limit for less proves nothing


def check_rogue_miner(rec: RunRecord) -> Check:
    """A miner that ignores its target and its pause, and alone breaks the import limit
    (import minus every other miner's power above the limit). The scenario must provoke
    that for PROVOKED_MIN_S, else it tested nothing and fails. Then `hearth run` pauses
    the rogue within 2 ticks + 1.5 s of the excess, names it in its log (`miner X ignores
    its command`) and names no other miner, and the others are at their floor (paused, or
    an AxeOS minimum) from two miner polls + two ticks + their full ramp after the excess
    began until it ends: the rogue's power is not theirs to share."""
    faults = [(f, on, off) for f, on, off in rec.fault_times
              if f.kind == "miner_ignores_target"]
    if not faults:
        return Check("rogue_miner", True, "no miner ignoring its commands", skipped=True)
    cfg = parse_site(rec.site, "scenario")
    limit = cfg.site.import_limit_w
    log_path = rec.out / "hearth-run.log"
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    tick_s = float(rec.scenario.tick_s)
    pause_deadline_s = 2 * tick_s + 1.5
    bad: list[str] = []
    alone_s = 0.0
    named = paused = 0
    pause_after_s = others_w = 0.0
    for f, on, off in faults:
        rogue = str(f.miner)
        rows = [r for r in rec.rows if on <= r.t_s < off]
        over = [r for r in rows
                if r.state.grid_w - (sum(r.state.miner_w.values())
                                     - r.state.miner_w.get(rogue, 0.0)) > limit + 1.0]
        span = over[-1].t_s - over[0].t_s if over else 0.0
        alone_s += span
        if span < PROVOKED_MIN_S:
            bad.append(f"{rogue} was alone above the {limit:.0f} W import limit for "
                       f"{span:.1f}s (< {PROVOKED_MIN_S:.0f}s): the scenario did not provoke "
                       "what it tests")
            continue
        t0 = over[0].t_s
        sent = next((r.t_s for r in rows if r.paused.get(rogue)), None)
        if sent is not None:
            paused += 1
            pause_after_s = max(pause_after_s, sent - t0)
        if sent is None or sent - t0 > pause_deadline_s:
            bad.append(f"{rogue} alone above the limit from t={t0:.1f}s: no pause sent within "
                       f"{pause_deadline_s:.1f}s" + ("" if sent is None
                                                    else f" (sent at t={sent:.1f}s)"))
        if f"miner {rogue} ignores its command" in text:
            named += 1
        else:
            bad.append(f"{rogue} alone broke the import limit from t={t0:.1f}s and "
                       "hearth-run.log never names it as ignoring its commands")
        others = [m for m in cfg.miners if m.name != rogue]
        for m in others:
            if f"miner {m.name} ignores its command" in text:
                bad.append(f"hearth-run.log blames {m.name}, which obeyed, as ignoring its "
                           "commands")
        grace_s = 2 * MINER_POLL_S + 2 * tick_s + max(
            ((m.max_power_w - m.min_power_w) / m.ramp_w_per_s for m in others), default=0.0)
        late = [(r.t_s, _obeying_w(rec, r)) for r in over if r.t_s >= t0 + grace_s]
        if not late:
            bad.append(f"{rogue} alone above the limit for {span:.1f}s, shorter than the "
                       f"{grace_s:.1f}s the others may take to shed: the scenario cannot "
                       "show they do")
        high = [(t, w) for t, w in late if w > 2.0]
        others_w = max([others_w, *(w for _t, w in late)])
        if high:
            bad.append(f"t={high[0][0]:.1f}s: with {rogue} alone above the limit, the other "
                       f"miners draw {high[0][1]:.0f} W above their floor "
                       f"({len(high)} samples from {t0 + grace_s:.1f}s)")
    return Check("rogue_miner", not bad,
                 f"{len(faults)} rogue miner fault(s); alone above the limit for "
                 f"{alone_s:.1f}s; pause sent {paused}x (worst {pause_after_s:.1f}s after "
                 f"the excess); named in the log {named}x; others above their floor at "
                 f"most {others_w:.0f} W once shed", bad,
                 {"rogue_alone_over_limit_s": alone_s, "rogue_named": named,
                  "rogue_paused": paused, "rogue_pause_after_s": pause_after_s,
                  "rogue_others_above_floor_w": others_w})


def _miner_from_battery_w(st: SiteState) -> float:
    """The plant's attribution: PV serves the house, then the miners; battery discharge
    serves the house first, the miners next."""
    discharge = max(-st.battery_w, 0.0)
    miner_w = sum(st.miner_w.values())
    pv_left = max(st.pv_w - st.load_w, 0.0)
    house_rest = max(st.load_w - st.pv_w, 0.0)
    return max(0.0, min(miner_w - min(miner_w, pv_left), discharge - min(discharge,
                                                                           house_rest)))


def check_battery_reserve(rec: RunRecord) -> Check:
    """The battery never below reserve_soc_pct while feeding the miners, beyond the time
    the controller needs to see it (meter poll + two ticks) and the miners to stop."""
    cfg = parse_site(rec.site, "scenario")
    if cfg.battery is None:
        return Check("battery_reserve", True, "no battery on this site", skipped=True)
    reserve = cfg.battery.reserve_soc_pct
    tol_w = 50.0
    stop_s = max((float(m.get("stop_s", 0.0)) for m in rec.site["miners"]), default=0.0)
    grace_s = 2 * float(rec.scenario.tick_s) + stop_s + 1.5
    bad: list[str] = []
    start: float | None = None
    worst_w = 0.0
    below_s = 0.0
    prev_t: float | None = None
    reported = False
    for r in rec.rows:
        w = _miner_from_battery_w(r.state)
        if r.state.soc_pct < reserve and w > tol_w:
            worst_w = max(worst_w, w)
            if prev_t is not None and start is not None:
                below_s += r.t_s - prev_t
            if start is None:
                start, reported = r.t_s, False
            elif r.t_s - start > grace_s and not reported:
                bad.append(f"t={start:.1f}s: battery at {r.state.soc_pct:.1f}% (reserve "
                           f"{reserve:.0f}%) feeds the miners {w:.0f} W for more than "
                           f"{grace_s:.1f}s")
                reported = True
        else:
            start = None
        prev_t = r.t_s
    low = min((r.state.soc_pct for r in rec.rows), default=float("nan"))
    return Check("battery_reserve", not bad,
                 f"reserve {reserve:.0f}%, lowest SoC {low:.2f}%, miners fed from the "
                 f"battery below reserve for {below_s:.1f}s (peak {worst_w:.0f} W, "
                 f"tolerance {tol_w:.0f} W / {grace_s:.1f}s)", bad[:10],
                 {"lowest_soc_pct": low, "below_reserve_feeding_s": below_s})


def check_tank_max(rec: RunRecord) -> Check:
    tank = rec.site.get("tank")
    if not tank:
        return Check("tank_max", True, "no tank on this site", skipped=True)
    mx = float(tank["max_c"])
    bad = [f"t={r.t_s:.1f}s tank {r.state.tank_c:.2f} °C" for r in rec.rows
           if r.state.tank_c > mx]
    temps = [r.state.tank_c for r in rec.rows if r.state.tank_c == r.state.tank_c]
    hottest = max(temps, default=float("nan"))
    return Check("tank_max", not bad, f"hottest {hottest:.2f} °C, max {mx:g} °C", bad[:10],
                 {"hottest_tank_c": round(hottest, 2), "tank_max_c": mx})


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
        if not driver_can_pause(m.get("driver", {})):
            continue  # never paused: nothing to time
        min_on, min_off = float(m.get("min_on_s", 300)), float(m.get("min_off_s", 300))
        last_t: float | None = None
        last_p: bool | None = None
        for r in rec.rows:
            p = r.paused[name]
            if last_p is not None and p != last_p:
                switches += 1
                held = r.t_s - last_t if last_t is not None else float("inf")
                need = min_off if not p else min_on  # resumed after an off period, or v.v.
                # Forced: a pause while a fault is on, or the rig's SIGTERM at the end.
                forced = p and (bool(r.faults) or r.t_s >= rec.scenario.duration_s)
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
    (boot + ramp) is reported as a figure, not judged: a real S9 boots for 90 s.

    Timed from when the fault cleared, or, if another fault was still on then, from when
    the last one cleared: normal control cannot be asked of a site that still has one
    (a cloud that passes while a miner still ignores its commands)."""
    bad: list[str] = []
    worst = settle_worst = 0.0
    for f, _on, off in rec.fault_times:
        after = [r for r in rec.rows if r.t_s >= off and not r.faults and r.controller_up]
        base = after[0].writes if after else {}
        clear = off
        while True:  # a fault still on when this one (or the one after it) cleared
            later = max((off2 for _f2, on2, off2 in rec.fault_times if on2 <= clear < off2),
                        default=clear)
            if later <= clear:
                break
            clear = later
        acted = next((r.t_s for r in after if _in_band(rec, r) or any(
            r.writes.get(n, 0) > base.get(n, 0) and not r.paused[n] for n in r.writes)),
            None)
        settled = next((r.t_s for r in after if _in_band(rec, r)), None)
        if settled is not None:
            settle_worst = max(settle_worst, settled - clear)
        since = f"{off:.1f}s" + (f" (the last fault at {clear:.1f}s)" if clear > off else "")
        if acted is None:
            bad.append(f"{f.kind} cleared at {since}: the controller never resumed")
            continue
        worst = max(worst, acted - clear)
        if acted - clear > rec.scenario.recovery_s:
            bad.append(f"{f.kind} cleared at {since}: control resumed after "
                       f"{acted - clear:.1f}s (limit {rec.scenario.recovery_s:.0f}s)")
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
    # A wall clock stepped forward leaves a gap in wall time as long as the step (no energy
    # was there to lose); any other gap is lost intervals.
    jumps = [f.value for f in rec.scenario.faults if f.kind == "clock_jump" and f.value > 0]
    for (s0, d0, _), (s1, _, _) in itertools.pairwise(sorted(set(rows))):
        if s1 != s0 + d0 and s1 != s0:
            j = next((j for j in jumps if abs(s1 - s0 - d0 - j) <= d0 + 1), None)
            if j is not None:
                jumps.remove(j)
                continue
            bad.append(f"gap: interval {s0}+{d0}s is followed by {s1} (intervals lost)")
    bad += [f"interval {int(r[0])}: {float(r[2]):.1f} s covered in {int(r[1])} s (counted "
            "twice)" for r in rows if float(r[2]) > int(r[1]) + 0.5]
    covered = sum(float(r[2]) for r in rows)
    if not rows:
        bad.append("no ledger interval written or open")
    elif covered > rec.scenario.duration_s + 2.0:
        bad.append(f"{covered:.1f} s accounted in a {rec.scenario.duration_s:.0f} s run "
                   "(time counted twice)")
    # Every tick is a sample of tick_s: what `hearth run` ticked must be in the ledger (a
    # sample dropped as "already accounted" after a clock step back is lost energy that
    # leaves no gap). Ticked time: from its own "stopped after N ticks", else (a process
    # killed at the end) the time it ran from its first miner command to the scenario's
    # end, which it surely ticked. Not judged when the scenario SIGKILLs it on purpose.
    log_path = rec.out / "hearth-run.log"
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    ticks = [int(n) for n in re.findall(r"stopped after (\d+) ticks", text)]
    tick_s = float(rec.scenario.tick_s)
    if rows and not any(f.kind == "kill_restart" for f in rec.scenario.faults):
        first = next((r.t_s for r in rec.rows if sum(r.writes.values()) > 0), None)
        ticked = (sum(ticks) * tick_s if ticks else
                  max(0.0, rec.scenario.duration_s - first) if first is not None else 0.0)
        if ticked and covered < ticked - max(2.0 + 10 * tick_s, 0.1 * ticked):
            bad.append(f"{ticked:.1f} s ticked, only {covered:.1f} s accounted "
                       "(samples lost)")
    return Check("ledger", not bad, f"{len(rows)} intervals (incl. the open one), "
                 f"{covered:.1f} s covered", bad,
                 {"intervals": len(rows), "covered_s": covered})


ALL = {"import_limit": check_import_limit, "tank_max": check_tank_max,
       "stale_to_zero": check_stale_to_zero, "min_on_off": check_min_on_off,
       "recovery": check_recovery, "ledger": check_ledger,
       "battery_reserve": check_battery_reserve, "rogue_miner": check_rogue_miner,
       "price_response": lambda rec: check_price_response(rec)}


def _reached(rec: RunRecord, r: Row, expect: str, band_w: float) -> bool:
    if expect == "full":
        cap = sum(float(m["max_power_w"]) for m in rec.site["miners"])
        return sum(r.state.miner_w.values()) >= cap - band_w
    floor = _floor_w(rec)
    shed = all(w <= floor.get(n, 0.0) + 1.0 for n, w in r.state.miner_w.items())
    return shed if expect == "shed" else not shed


def check_price_response(rec: RunRecord) -> Check:
    """In each price period with an expectation, the miners reach it within `within_s`
    (all at capacity, less the recovery band: "full"; pausable ones off and the others at
    their minimum: "shed"; anything else: "on")."""
    steps = [p for p in rec.scenario.prices if p.expect is not None]
    if not steps:
        return Check("price_response", True, "no price expectation in this scenario",
                     skipped=True)
    ends = [p.at_s for p in rec.scenario.prices[1:]] + [rec.scenario.duration_s]
    end_of = {id(p): e for p, e in zip(rec.scenario.prices, ends, strict=True)}
    bad: list[str] = []
    figs: dict[str, float] = {}
    # A period that starts with the run is timed from the controller's first accepted
    # miner command (the process start-up is not the price response).
    ready = next((r.t_s for r in rec.rows if sum(r.writes.values()) > 0), 0.0)
    for p in steps:
        assert p.expect is not None
        end = end_of[id(p)]
        start = max(p.at_s, ready) if p.at_s == 0 else p.at_s
        hit = next((r.t_s for r in rec.rows if start <= r.t_s < end and r.controller_up
                    and _reached(rec, r, p.expect, rec.scenario.recovery_band_w)), None)
        name = f"{p.expect}_after_price_at_{p.at_s:g}s"
        if hit is None:
            bad.append(f"price {p.import_price:g}/{p.export_price:g} from {start:g}s: miners "
                       f"never {p.expect} before {end:g}s")
            continue
        figs[name + "_s"] = hit - start
        if hit - start > p.within_s:
            bad.append(f"price {p.import_price:g}/{p.export_price:g} from {start:.1f}s: "
                       f"miners {p.expect} only after {hit - start:.1f}s "
                       f"(within {p.within_s:g}s)")
    return Check("price_response", not bad, ", ".join(f"{k} {v:.1f}" for k, v in
                                                      figs.items()) or "never reached",
                 bad, figs)


def run_checks(rec: RunRecord) -> list[Check]:
    from hil.rig.mqtt_checks import MQTT_CHECKS  # it imports this module: not at the top

    checks = {**ALL, **MQTT_CHECKS}
    return [checks[c](rec) for c in rec.scenario.checks]
