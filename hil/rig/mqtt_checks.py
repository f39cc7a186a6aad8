"""Checks of the MQTT side (broker restart, satellite, DR), judged on the recorded run.

Each one is skipped (and reported skipped) when the scenario has no fault of its kind, and
fails — never passes — when the scenario cannot exercise it (e.g. nothing to shed when the
DR cap arrives). Deadlines are built from named parts and printed with the measured time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from controller.miners.factory import driver_can_pause
from hil.rig.checks import Check, _in_band
from hil.rig.mqtt_rig import SENSOR_FAULTS, MqttRecord
from hil.rig.runner import Row, RunRecord
from hil.rig.scenario import Fault

DR_LATENCY_S = 1.0  # a DR command reaches the miners within this (issue: "within 1 s")
DR_TOLERANCE_W = 10.0
HEARTBEAT_MARGIN_S = 1.0  # board loop (50 ms), plant step (0.2 s), scheduling
RECONNECT_MARGIN_S = 2.0  # broker start-up, paho's loop, one publish interval


def _faults(rec: RunRecord, *kinds: str) -> list[tuple[Fault, float, float]]:
    return [(f, on, off) for f, on, off in rec.fault_times if f.kind in kinds]


def _tank_miners(rec: RunRecord, pausable_only: bool = False) -> list[str]:
    return [m["name"] for m in rec.site["miners"] if m.get("heats_tank", True)
            and not (pausable_only and not driver_can_pause(m.get("driver", {})))]


def _first(rows: list[Row], pred: Callable[[Row], bool]) -> Row | None:
    return next((r for r in rows if pred(r)), None)


def _total_w(r: Row) -> float:
    return sum(r.state.miner_w.values())


def check_mqtt_reconnect(rec: RunRecord) -> Check:
    """After the broker comes back (empty: no persistence) the controller reconnects and
    republishes: `availability` online and its state topics within reconnect_max_s +
    telemetry_interval_s + a margin, and a new session finds both retained."""
    mq = rec.mqtt
    faults = _faults(rec, "broker_restart")
    if mq is None or not faults:
        return Check("mqtt_reconnect", True, "no broker restart in this scenario", skipped=True)
    c = mq.controller_mqtt
    deadline = (float(c.get("reconnect_max_s", 60)) + float(c.get("telemetry_interval_s", 5))
                + RECONNECT_MARGIN_S)
    bad: list[str] = []
    worst_state = worst_online = 0.0
    for _f, on, off in faults:
        during = [m for m in mq.messages if on + 0.5 < m.t_s < off and m.topic.startswith(
            mq.topic(""))]
        if during:
            bad.append(f"{len(during)} message(s) seen while the broker was down ({on:.1f}-"
                       f"{off:.1f}s): the outage was not real")
        state = next((m.t_s for m in mq.messages if m.t_s >= off
                      and m.topic.startswith(mq.topic("state/"))), None)
        online = next((m.t_s for m in mq.messages if m.t_s >= off
                       and m.topic == mq.topic("availability") and m.payload == b"online"),
                      None)
        for what, t in (("a state topic", state), ("availability online", online)):
            if t is None:
                bad.append(f"broker back at {off:.1f}s: {what} never seen again")
            elif t - off > deadline:
                bad.append(f"broker back at {off:.1f}s: {what} only after {t - off:.1f}s "
                           f"(deadline {deadline:.1f}s)")
        if state is not None:
            worst_state = max(worst_state, state - off)
        if online is not None:
            worst_online = max(worst_online, online - off)
        probe = next(((t, got) for t, got in mq.probes if t >= off), None)
        if probe is None:
            bad.append(f"broker back at {off:.1f}s: no retained-state probe ran")
        else:
            got = probe[1]
            if got.get(mq.topic("availability")) != b"online":
                bad.append(f"probe at {probe[0]:.1f}s: retained availability is "
                           f"{got.get(mq.topic('availability'))!r}, not online")
            for suffix in ("state/power", "state/control"):
                if mq.topic(suffix) not in got:
                    bad.append(f"probe at {probe[0]:.1f}s: {suffix} not retained")
    return Check("mqtt_reconnect", not bad,
                 f"{len(faults)} restart(s): state again after {worst_state:.1f}s, online "
                 f"after {worst_online:.1f}s (deadline {deadline:.1f}s); retained probed",
                 bad, {"worst_state_s": worst_state, "worst_online_s": worst_online,
                       "deadline_s": deadline})


def check_control_without_mqtt(rec: RunRecord) -> Check:
    """MQTT loss must not stop control: a PV step while the broker is down is answered
    (a miner write) and the grid is back at its set point before the broker returns."""
    outages = _faults(rec, "broker_restart")
    if not outages:
        return Check("control_without_mqtt", True, "no broker outage in this scenario",
                     skipped=True)
    steps = _faults(rec, "pv_step")
    bad: list[str] = []
    worst_act = worst_settle = 0.0
    for _f, on, off in outages:
        inside = [(p_on, p_off) for _p, p_on, p_off in steps if on <= p_on < off]
        if not inside:
            bad.append(f"no pv_step during the outage {on:.1f}-{off:.1f}s: the scenario "
                       "cannot show control going on without MQTT")
            continue
        for p_on, _p_off in inside:
            rows = [r for r in rec.rows if p_on <= r.t_s < off]
            if not rows:
                continue
            base = rows[0].writes
            acted = _first(rows, lambda r, b=base: any(  # type: ignore[misc]
                r.writes.get(n, 0) > b.get(n, 0) for n in r.writes))
            if acted is None:
                bad.append(f"PV step at {p_on:.1f}s: no miner write before the broker came "
                           f"back at {off:.1f}s")
                continue
            worst_act = max(worst_act, acted.t_s - p_on)
            settled = _first([r for r in rows if r.t_s >= acted.t_s],
                             lambda r: _in_band(rec, r))
            if settled is None:
                bad.append(f"PV step at {p_on:.1f}s: grid not back at its set point before "
                           f"the broker came back at {off:.1f}s")
            else:
                worst_settle = max(worst_settle, settled.t_s - p_on)
    return Check("control_without_mqtt", not bad,
                 f"broker down: first miner write {worst_act:.1f}s after the PV step, grid "
                 f"at its set point after {worst_settle:.1f}s", bad,
                 {"worst_write_s": worst_act, "worst_settle_s": worst_settle})


def _untestable(rec: RunRecord, f: Fault, on: float, off: float, deadline: float,
                tank: list[str]) -> str | None:
    """Why this fault window cannot show a tank cut-off (None: it can): shorter than the
    deadline, or the tank miners were not running when it began (nothing to stop). Either
    fails the check: a scenario that cannot test its claim must not pass."""
    if off - on < deadline:
        return (f"{f.kind} at {on:.1f}s lasts {off - on:.1f}s, shorter than the deadline "
                f"{deadline:.1f}s: the scenario cannot test this")
    at_on = _first(rec.rows, lambda r: r.t_s >= on)
    if at_on is None or sum(at_on.state.miner_w.get(n, 0.0) for n in tank) <= 1.0:
        return f"{f.kind} at {on:.1f}s: tank miners {tank} not running: nothing to stop"
    return None


def check_heartbeat_cutoff(rec: RunRecord) -> Check:
    """The controller's heartbeats stop reaching the satellite (`hearth run` frozen, or the
    board's Wi-Fi down): the board opens the contactor within heartbeat_timeout_s (+ one
    heartbeat interval + margin) and the tank miners have no power; once heartbeats are
    back, the contactor closes again within recovery_s."""
    mq = rec.mqtt
    faults = _faults(rec, "controller_freeze", "satellite_link_down")
    if mq is None or mq.sat_id is None or not faults:
        return Check("heartbeat_cutoff", True, "no satellite heartbeat loss in this scenario",
                     skipped=True)
    timeout = float(mq.satellite_settings["heartbeat_timeout_s"])
    interval = float(rec.controller_site.get("satellite", {}).get("heartbeat_interval_s", 5))
    deadline = timeout + interval + HEARTBEAT_MARGIN_S
    tank = _tank_miners(rec)
    bad: list[str] = []
    worst_zero = worst_close = 0.0
    for f, on, off in faults:
        why = _untestable(rec, f, on, off, deadline, tank)
        if why is not None:
            bad.append(why)
            continue
        zero = _first([r for r in rec.rows if on <= r.t_s < off],
                      lambda r: all(r.state.miner_w.get(n, 0.0) == 0.0 for n in tank))
        opened = next((t for t, c in mq.contactor_changes if on <= t < off and not c), None)
        if zero is None or opened is None:
            bad.append(f"{f.kind} at {on:.1f}s: contactor "
                       f"{'opened' if opened is not None else 'never opened'}, tank miners "
                       f"{'at 0 W' if zero is not None else 'never at 0 W'} before {off:.1f}s")
            continue
        worst_zero = max(worst_zero, zero.t_s - on)
        if zero.t_s - on > deadline:
            bad.append(f"{f.kind} at {on:.1f}s: tank miners at 0 W only after "
                       f"{zero.t_s - on:.1f}s (deadline {deadline:.1f}s)")
        if opened - on < timeout - interval - float(rec.scenario.tick_s) - 0.2:
            bad.append(f"{f.kind} at {on:.1f}s: contactor opened after {opened - on:.1f}s, "
                       f"before the heartbeat timeout ({timeout:.1f}s) could have run out")
        closed = next((t for t, c in mq.contactor_changes if t >= off and c), None)
        if closed is None:
            bad.append(f"heartbeats back at {off:.1f}s: the contactor never closed again")
        else:
            worst_close = max(worst_close, closed - off)
            if closed - off > rec.scenario.recovery_s:
                bad.append(f"heartbeats back at {off:.1f}s: contactor closed only after "
                           f"{closed - off:.1f}s (limit {rec.scenario.recovery_s:.0f}s)")
    return Check("heartbeat_cutoff", not bad,
                 f"tank miners at 0 W {worst_zero:.1f}s after the heartbeats stopped "
                 f"(deadline {deadline:.1f}s = timeout {timeout:g} + interval {interval:g} + "
                 f"{HEARTBEAT_MARGIN_S:g}); contactor closed {worst_close:.1f}s after they "
                 "were back", bad, {"worst_to_zero_s": worst_zero, "deadline_s": deadline,
                               "worst_reclose_s": worst_close})


def _sat_fault_reported(mq: MqttRecord, after_s: float) -> float | None:
    assert mq.sat_id is not None
    for m in mq.on(f"sat/{mq.sat_id}/telemetry", after_s):
        try:
            top = json.loads(m.payload).get("sensors", {}).get("top", {})
        except ValueError:
            continue
        if isinstance(top, dict) and top.get("fault") and "temp_c" not in top:
            return m.t_s
    return None


def check_tank_stale_to_zero(rec: RunRecord) -> Check:
    """The tank sensor fails: the satellite reports the fault and the controller pauses
    the (pausable) tank miners within stale_timeout + stop time + 2 ticks + 1.5 s — paused
    by the controller, not cut by the board's own sensor-fault contactor trip."""
    mq = rec.mqtt
    faults = _faults(rec, *SENSOR_FAULTS)
    if mq is None or mq.sat_id is None or not faults:
        return Check("tank_stale_to_zero", True, "no tank sensor fault in this scenario",
                     skipped=True)
    stale = float(rec.controller_site.get("control", {}).get("stale_timeout_s", 10.0))
    tank = _tank_miners(rec, pausable_only=True)
    stop_s = max((float(m.get("stop_s", 0.0)) for m in rec.site["miners"]
                  if m["name"] in tank), default=0.0)
    deadline = stale + stop_s + 2 * float(rec.scenario.tick_s) + 1.5
    bad: list[str] = []
    worst = worst_report = 0.0
    board: list[float] = []
    for f, on, off in faults:
        why = _untestable(rec, f, on, off, deadline, tank)
        if why is not None:
            bad.append(why)
            continue
        reported = _sat_fault_reported(mq, on)
        if reported is None or reported > off:
            bad.append(f"{f.kind} at {on:.1f}s: the satellite never reported the fault")
        else:
            worst_report = max(worst_report, reported - on)
        zero = _first([r for r in rec.rows if on <= r.t_s < off],
                      lambda r: all(r.state.miner_w.get(n, 0.0) == 0.0 and r.paused[n]
                                    for n in tank))
        if zero is None:
            bad.append(f"{f.kind} at {on:.1f}s: the controller never paused {tank} before "
                       f"the sensor came back at {off:.1f}s")
            worst = max(worst, off - on)
        else:
            worst = max(worst, zero.t_s - on)
            if zero.t_s - on > deadline:
                bad.append(f"{f.kind} at {on:.1f}s: tank miners paused and at 0 W only "
                           f"after {zero.t_s - on:.1f}s (deadline {deadline:.1f}s)")
        cut = next((t for t, c in mq.contactor_changes if on <= t < off and not c), None)
        if cut is not None:
            board.append(cut - on)
    figures = {"worst_to_zero_s": worst, "deadline_s": deadline,
               "worst_fault_reported_s": worst_report}
    if board:
        figures["board_cutoff_s"] = max(board)
    return Check("tank_stale_to_zero", not bad,
                 f"{len(faults)} sensor fault(s): reported after {worst_report:.1f}s, tank "
                 f"miners paused at 0 W after {worst:.1f}s (deadline {deadline:.1f}s)"
                 + (f"; the board's own cut-off opened after {max(board):.1f}s" if board
                    else ""), bad, figures)


def check_dr_deadline(rec: RunRecord) -> Check:
    """A DR cap sent over MQTT (aggregator account): total miner power <= cap + tolerance
    within DR_LATENCY_S + 2 ticks + the miners' stop time (the plant's model), and held
    until the cap ends. The measured time is reported."""
    mq = rec.mqtt
    faults = _faults(rec, "dr_cap")
    if mq is None or not faults:
        return Check("dr_deadline", True, "no DR cap in this scenario", skipped=True)
    tick = float(rec.scenario.tick_s)
    bad: list[str] = []
    worst = worst_answer = 0.0
    deadline = at_cmd_w = slope_w_per_s = 0.0
    for f, on, off in faults:
        cap = f.value
        running = [m for m in rec.site["miners"]]
        stop_s = max((float(m.get("stop_s", 0.0)) for m in running), default=0.0)
        deadline = DR_LATENCY_S + 2 * tick + max(stop_s, tick)
        at_on = _first(rec.rows, lambda r, t=on: r.t_s >= t)  # type: ignore[misc]
        if at_on is None or _total_w(at_on) <= cap + DR_TOLERANCE_W:
            bad.append(f"DR cap {cap:.0f} W at {on:.1f}s: miners already at "
                       f"{_total_w(at_on) if at_on else 0:.0f} W, nothing to shed: the "
                       "scenario cannot test this")
            continue
        before = _first(rec.rows, lambda r, t=on - 1.0: r.t_s >= t)  # type: ignore[misc]
        at_cmd_w = _total_w(at_on)
        if before is not None and at_on.t_s > before.t_s:  # ramping up when it arrived?
            slope_w_per_s = (at_cmd_w - _total_w(before)) / (at_on.t_s - before.t_s)
        answer = next((m for m in mq.on("cmd/dr_cap/result", on) if m.t_s < off), None)
        if answer is None:
            bad.append(f"DR cap at {on:.1f}s: no answer on cmd/dr_cap/result")
        else:
            body: Any = json.loads(answer.payload)
            worst_answer = max(worst_answer, answer.t_s - on)
            if not body.get("ok"):
                bad.append(f"DR cap at {on:.1f}s refused: {body.get('errors')}")
        window = [r for r in rec.rows if on <= r.t_s < off]
        met = _first(window, lambda r, c=cap: _total_w(r) <= c + DR_TOLERANCE_W)  # type: ignore[misc]
        if met is None:
            bad.append(f"DR cap {cap:.0f} W at {on:.1f}s: never met before {off:.1f}s "
                       f"(miners at {max(_total_w(r) for r in window):.0f} W at most)")
            worst = max(worst, off - on)
            continue
        worst = max(worst, met.t_s - on)
        if met.t_s - on > deadline:
            bad.append(f"DR cap {cap:.0f} W at {on:.1f}s: met only after {met.t_s - on:.2f}s "
                       f"(deadline {deadline:.2f}s)")
        later = [r for r in window if r.t_s > met.t_s and _total_w(r) > cap + DR_TOLERANCE_W]
        if later:
            bad.append(f"DR cap {cap:.0f} W: exceeded again at t={later[0].t_s:.1f}s "
                       f"({_total_w(later[0]):.0f} W), {len(later)} step(s) in all")
    return Check("dr_deadline", not bad,
                 f"{len(faults)} DR cap(s): met after {worst:.2f}s (deadline {deadline:.2f}s "
                 f"= {DR_LATENCY_S:g} s command + 2 ticks + stop), answered after "
                 f"{worst_answer:.2f}s; miners at {at_cmd_w:.0f} W moving {slope_w_per_s:+.0f}"
                 " W/s when it arrived", bad,
                 {"worst_to_cap_s": worst, "deadline_s": deadline,
                  "worst_answer_s": worst_answer, "miner_w_at_cmd": at_cmd_w,
                  "miner_w_per_s_at_cmd": slope_w_per_s})


MQTT_CHECKS: dict[str, Callable[[RunRecord], Check]] = {
    "mqtt_reconnect": check_mqtt_reconnect, "control_without_mqtt": check_control_without_mqtt,
    "heartbeat_cutoff": check_heartbeat_cutoff, "tank_stale_to_zero": check_tank_stale_to_zero,
    "dr_deadline": check_dr_deadline}
