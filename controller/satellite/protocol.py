"""The satellite's MQTT contract, as the controller reads it (the board's side is
firmware/hsat/link.py and app.py; firmware/README.md documents both).

Topics under `hearth/<site_id>/sat/<sat_id>/`:
  availability   retained `online` / `offline` (the board's Last Will)
  telemetry      {"v": 1, "seq", "boot", "uptime_ms", "sensors": {role: {"temp_c", "age_ms"}
                 | {"fault", "reason"}}, "heat": {"power_w", "flow_l_per_min", "energy_kwh",
                 "energy_wh", "volume_l", ...}, "relays": {"contactor", "pump"}, "safe": [...],
                 "controller_age_ms", "pending_events", "tank_max_c", ...}
  event          {"id", "boot", "type": trip|release|notice, "code", "reason", "uptime_ms"}
  ack            {"cmd", "ok", "id"?, "error"?, ...}
  cmd/heartbeat  {"seq": int}
  cmd/relays     {"id", "contactor": bool, "pump": bool}
  cmd/config     {"id", "settings": {...}}
  cmd/trip_ack   {"upto": int}
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from controller.errors import Problem

ROLES = ("top", "middle", "bottom", "supply", "return")
EVENT_TYPES = ("trip", "release", "notice")


def base_topic(site_id: str, sat_id: str) -> str:
    return f"hearth/{site_id}/sat/{sat_id}/"


class SensorValue(NamedTuple):
    temp_c: float | None
    age_s: float  # how old the value was when the board published it
    fault: str | None = None
    reason: str | None = None


class Telemetry(NamedTuple):
    seq: int
    boot: int
    uptime_ms: int
    sensors: dict[str, SensorValue]
    heat_power_w: float | None
    flow_l_per_min: float | None
    energy_wh: int | None
    contactor: bool
    pump: bool
    safe: tuple[str, ...]
    pending_events: int
    raw: dict[str, Any]


class Event(NamedTuple):
    id: int
    boot: int
    type: str
    code: str
    reason: str
    raw: dict[str, Any]


class Ack(NamedTuple):
    cmd: str
    ok: bool
    id: str | int | None
    error: str | None
    raw: dict[str, Any]


class PayloadError(ValueError):
    """A message from the board that does not follow the contract."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _load(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError([Problem("payload", f"not valid JSON ({err})")]) from None
    if not isinstance(data, dict):
        raise PayloadError([Problem("payload", "must be a JSON object")])
    return data


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_telemetry(payload: bytes) -> Telemetry:
    data = _load(payload)
    problems: list[Problem] = []
    if data.get("v") != 1:
        problems.append(Problem("v", f"unsupported telemetry version {data.get('v')!r}"))
    for key in ("seq", "boot", "uptime_ms", "pending_events"):
        if not _int(data.get(key)) or data[key] < 0:
            problems.append(Problem(key, "must be a non-negative integer"))
    sensors: dict[str, SensorValue] = {}
    raw_sensors = data.get("sensors")
    if not isinstance(raw_sensors, dict):
        problems.append(Problem("sensors", "must be an object"))
        raw_sensors = {}
    for role, entry in raw_sensors.items():
        where = f"sensors.{role}"
        if role not in ROLES:
            problems.append(Problem(where, f"unknown role (known: {', '.join(ROLES)})"))
            continue
        if not isinstance(entry, dict):
            problems.append(Problem(where, "must be an object"))
            continue
        temp, age = entry.get("temp_c"), entry.get("age_ms", 0)
        if temp is not None and (not _num(temp) or not -55 <= temp <= 125):
            problems.append(Problem(f"{where}.temp_c", f"must be a number in -55..125, got "
                                                       f"{temp!r}"))
            continue
        if not _num(age) or age < 0:
            problems.append(Problem(f"{where}.age_ms", "must be a non-negative number"))
            continue
        fault, reason = entry.get("fault"), entry.get("reason")
        sensors[role] = SensorValue(
            float(temp) if temp is not None else None, float(age) / 1000.0,
            str(fault) if fault is not None else None, str(reason) if reason is not None else None,
        )
    heat = data.get("heat", {})
    power = flow = None
    energy_wh: int | None = None
    if not isinstance(heat, dict):
        problems.append(Problem("heat", "must be an object"))
    else:
        p, f, e = heat.get("power_w"), heat.get("flow_l_per_min"), heat.get("energy_wh")
        if p is not None and not _num(p):
            problems.append(Problem("heat.power_w", "must be a number or null"))
        else:
            power = float(p) if p is not None else None
        if f is not None and (not _num(f) or f < 0):
            problems.append(Problem("heat.flow_l_per_min", "must be a non-negative number"))
        else:
            flow = float(f) if f is not None else None
        if e is not None and (not _int(e) or e < 0):
            problems.append(Problem("heat.energy_wh", "must be a non-negative integer"))
        else:
            energy_wh = e
    relays = data.get("relays")
    contactor = pump = False
    if (not isinstance(relays, dict) or not isinstance(relays.get("contactor"), bool)
            or not isinstance(relays.get("pump"), bool)):
        problems.append(Problem("relays", "must be {\"contactor\": bool, \"pump\": bool}"))
    else:
        contactor, pump = relays["contactor"], relays["pump"]
    safe = data.get("safe")
    if not isinstance(safe, list) or not all(isinstance(s, str) for s in safe):
        problems.append(Problem("safe", "must be a list of strings"))
        safe = []
    if problems:
        raise PayloadError(problems)
    return Telemetry(data["seq"], data["boot"], data["uptime_ms"], sensors, power, flow,
                     energy_wh, contactor, pump, tuple(safe), data["pending_events"], data)


def parse_event(payload: bytes) -> Event:
    data = _load(payload)
    problems: list[Problem] = []
    for key in ("id", "boot"):
        if not _int(data.get(key)) or data[key] < 0:
            problems.append(Problem(key, "must be a non-negative integer"))
    if data.get("type") not in EVENT_TYPES:
        problems.append(Problem("type", f"must be one of {', '.join(EVENT_TYPES)}"))
    for key in ("code", "reason"):
        if not isinstance(data.get(key), str) or not data[key]:
            problems.append(Problem(key, "must be a non-empty string"))
    if problems:
        raise PayloadError(problems)
    return Event(data["id"], data["boot"], data["type"], data["code"], data["reason"], data)


def parse_ack(payload: bytes) -> Ack:
    data = _load(payload)
    problems: list[Problem] = []
    if not isinstance(data.get("cmd"), str):
        problems.append(Problem("cmd", "must be a string"))
    if not isinstance(data.get("ok"), bool):
        problems.append(Problem("ok", "must be true or false"))
    ident = data.get("id")
    if ident is not None and not (isinstance(ident, str) or _int(ident)):
        problems.append(Problem("id", "must be a string, an integer or absent"))
    err = data.get("error")
    if err is not None and not isinstance(err, str):
        problems.append(Problem("error", "must be a string"))
    if problems:
        raise PayloadError(problems)
    return Ack(data["cmd"], data["ok"], ident, err, data)
