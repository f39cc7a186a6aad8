"""A HIL scenario as data: which site, which plant input, which faults when, what to check.

Scenario files live in hil/scenarios/*.toml (format in docs/hil.md). Everything is
validated up front so a typo fails before any process starts, naming the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import InputError, Problem

ROOT = Path(__file__).resolve().parents[2]

FAULT_KINDS = ("meter_silent", "modbus_garbage", "modbus_exception", "meter_frozen",
               "miner_hang", "kill_restart", "pv_step",
               "rtu_noise", "rtu_silent", "miner_ignores_target", "clock_jump",
               # MQTT side (hil/rig/mqtt_rig.py)
               "broker_restart", "controller_freeze", "satellite_link_down", "dr_cap",
               "tank_sensor_crc", "tank_sensor_85", "tank_sensor_absent")
CHECKS = ("import_limit", "tank_max", "stale_to_zero", "min_on_off", "recovery", "ledger",
          "battery_reserve", "rogue_miner",
          "mqtt_reconnect", "control_without_mqtt", "heartbeat_cutoff", "tank_stale_to_zero",
          "dr_deadline", "price_response")
EXPECTS = ("full", "shed", "on")  # what the miners should do in a price period
MINER_FAULTS = ("miner_hang", "miner_ignores_target")


@dataclass(frozen=True)
class Fault:
    """A fault active over [at_s, at_s + duration_s) of the run's real time."""

    kind: str
    at_s: float
    duration_s: float
    miner: str | None = None
    value: float = 0.0

    @property
    def end_s(self) -> float:
        return self.at_s + self.duration_s


@dataclass(frozen=True)
class PriceStep:
    """From `at_s` of the run on, these prices (the rig writes them to `[tariffs]
    prices_file` at the controller's wall-clock times); `expect`: what the miners should
    have reached within `within_s`: "full" (all at capacity), "shed" (pausable ones at
    0 W, the others at their minimum) or "on" (not shed)."""

    at_s: float
    import_price: float
    export_price: float
    expect: str | None = None
    within_s: float = 10.0


@dataclass(frozen=True)
class TraceSpec:
    file: Path | None = None
    start_hour: float = 12.0
    pv_w: float = 0.0
    load_w: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    site_file: Path
    trace: TraceSpec
    duration_s: float
    tick_s: float = 0.5
    speed: float = 1.0
    recovery_s: float = 10.0
    recovery_band_w: float = 120.0
    drop_sections: tuple[str, ...] = ()
    patches: dict[str, dict[str, Any]] = field(default_factory=dict)
    miner_patch: dict[str, Any] = field(default_factory=dict)
    miner_patches: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    checks: tuple[str, ...] = CHECKS
    path: Path | None = None
    meter_transport: str = "tcp"  # "rtu": the grid meter is an SDM630 on a pty pair
    mqtt: bool = True  # the rig's Mosquitto with auth, and [mqtt] for the controller
    satellite: dict[str, Any] | None = None  # the controller's [satellite]; runs the board
    prices: tuple[PriceStep, ...] = ()  # a dynamic price series for hearth run


def _num(d: dict[str, Any], key: str, where: str, default: float | None,
         probs: list[Problem], positive: bool = False) -> float:
    v = d.get(key, default)
    if v is None:
        probs.append(Problem(f"{where}{key}", "is required"))
        return 0.0
    if isinstance(v, bool) or not isinstance(v, int | float):
        probs.append(Problem(f"{where}{key}", f"must be a number, got {v!r}"))
        return 0.0
    if v < 0 or (positive and v == 0):
        probs.append(Problem(f"{where}{key}", f"must be {'> 0' if positive else '>= 0'}"))
    return float(v)


def _table(d: dict[str, Any], key: str, probs: list[Problem]) -> dict[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, dict):
        probs.append(Problem(key, "must be a table"))
        return {}
    return v


def parse_scenario(d: dict[str, Any], source: str, path: Path | None = None) -> Scenario:
    """Scenario dict -> Scenario; every problem is reported at once (InputError)."""
    probs: list[Problem] = []
    known = {"name", "description", "site", "drop_sections", "duration_s", "tick_s", "speed",
             "recovery_s", "recovery_band_w", "trace", "patch", "miners", "miner", "faults",
             "checks", "meter_transport", "mqtt", "satellite", "prices"}
    for k in d:
        if k not in known:
            probs.append(Problem(k, f"unknown key (known: {', '.join(sorted(known))})"))
    name = d.get("name")
    if not isinstance(name, str) or not name:
        probs.append(Problem("name", "is required (a non-empty string)"))
        name = "?"
    site = d.get("site", "hil/sites/house-10kwp.toml")
    site_file = ROOT / str(site)
    if not site_file.is_file():
        probs.append(Problem("site", f"no such site file {site!r} (relative to the repo)"))
    tr = _table(d, "trace", probs)
    trace = TraceSpec(
        file=(ROOT / str(tr["file"])) if "file" in tr else None,
        start_hour=_num(tr, "start_hour", "trace.", 12.0, probs),
        pv_w=_num(tr, "pv_w", "trace.", 0.0, probs),
        load_w=_num(tr, "load_w", "trace.", 0.0, probs))
    if trace.file is not None and not trace.file.is_file():
        probs.append(Problem("trace.file", f"no such trace {tr['file']!r}"))
    duration = _num(d, "duration_s", "", None, probs, positive=True)
    faults: list[Fault] = []
    raw_faults = d.get("faults", [])
    if not isinstance(raw_faults, list):
        probs.append(Problem("faults", "must be an array of tables ([[faults]])"))
        raw_faults = []
    for i, f in enumerate(raw_faults):
        w = f"faults[{i}]."
        if not isinstance(f, dict):
            probs.append(Problem(f"faults[{i}]", "must be a table"))
            continue
        kind = f.get("kind")
        if kind not in FAULT_KINDS:
            probs.append(Problem(f"{w}kind", f"{kind!r} is not one of {', '.join(FAULT_KINDS)}"))
            continue
        at = _num(f, "at_s", w, None, probs)
        dur = _num(f, "duration_s", w, None, probs)
        miner = f.get("miner")
        if kind in MINER_FAULTS and not isinstance(miner, str):
            probs.append(Problem(f"{w}miner", f"is required for {kind} (the miner's name)"))
        if kind == "clock_jump" and not isinstance(f.get("value"), int | float):
            probs.append(Problem(f"{w}value", "is required for clock_jump (seconds, e.g. "
                                 "3600 or -3600)"))
        if kind in ("rtu_noise", "rtu_silent") and d.get("meter_transport") != "rtu":
            probs.append(Problem(f"{w}kind", f"{kind} needs meter_transport = \"rtu\""))
        if at + dur > duration:
            probs.append(Problem(f"{w}duration_s", f"fault ends at {at + dur:g} s, after the "
                                 f"scenario ({duration:g} s)"))
        faults.append(Fault(str(kind), at, dur, miner if isinstance(miner, str) else None,
                            float(f.get("value", 0.0))))
    checks = d.get("checks", list(CHECKS))
    if not isinstance(checks, list) or any(c not in CHECKS for c in checks):
        probs.append(Problem("checks", f"must be a list drawn from {', '.join(CHECKS)}"))
        checks = list(CHECKS)
    drop = d.get("drop_sections", [])
    if not isinstance(drop, list) or not all(isinstance(x, str) for x in drop):
        probs.append(Problem("drop_sections", "must be a list of section names"))
        drop = []
    patches = _table(d, "patch", probs)
    for k, v in patches.items():
        if not isinstance(v, dict):
            probs.append(Problem(f"patch.{k}", "must be a table of fields to set"))
    miner_patch = _table(d, "miner", probs)
    miner_patches = _table(d, "miners", probs)
    tick_s = _num(d, "tick_s", "", 0.5, probs, positive=True)
    speed = _num(d, "speed", "", 1.0, probs, positive=True)
    recovery_s = _num(d, "recovery_s", "", 10.0, probs)
    band_w = _num(d, "recovery_band_w", "", 120.0, probs)
    prices = _prices(d.get("prices", []), duration, probs)
    transport = d.get("meter_transport", "tcp")
    if transport not in ("tcp", "rtu"):
        probs.append(Problem("meter_transport", f"must be \"tcp\" or \"rtu\", got {transport!r}"))
    mqtt_on, satellite = _mqtt_keys(d, faults, probs)
    if probs:
        raise InputError(source, probs)
    return Scenario(
        name=str(name), description=str(d.get("description", "")), site_file=site_file,
        trace=trace, duration_s=duration, tick_s=tick_s, speed=speed,
        recovery_s=recovery_s, recovery_band_w=band_w,
        drop_sections=tuple(drop), patches=patches, miner_patch=miner_patch,
        miner_patches=miner_patches, faults=tuple(sorted(faults, key=lambda f: f.at_s)),
        checks=tuple(checks), path=path, meter_transport=str(transport), mqtt=mqtt_on,
        satellite=satellite, prices=prices)


def _prices(raw: Any, duration: float, probs: list[Problem]) -> tuple[PriceStep, ...]:
    if not isinstance(raw, list):
        probs.append(Problem("prices", "must be an array of tables ([[prices]])"))
        return ()
    out: list[PriceStep] = []
    for i, p in enumerate(raw):
        w = f"prices[{i}]."
        if not isinstance(p, dict):
            probs.append(Problem(f"prices[{i}]", "must be a table"))
            continue
        for k in p:
            if k not in ("at_s", "import_price", "export_price", "expect", "within_s"):
                probs.append(Problem(f"{w}{k}", "unknown key (known: at_s, import_price, "
                                     "export_price, expect, within_s)"))
        vals = []
        for k in ("import_price", "export_price"):
            v = p.get(k)
            if isinstance(v, bool) or not isinstance(v, int | float):
                probs.append(Problem(f"{w}{k}", f"must be a number (per kWh), got {v!r}"))
                v = 0.0
            vals.append(float(v))
        at = _num(p, "at_s", w, None, probs)
        if at >= duration > 0:
            probs.append(Problem(f"{w}at_s", f"{at:g} s is after the scenario ({duration:g} s)"))
        if out and at <= out[-1].at_s:
            probs.append(Problem(f"{w}at_s", "price steps must be in time order"))
        expect = p.get("expect")
        if expect is not None and expect not in EXPECTS:
            probs.append(Problem(f"{w}expect", f"{expect!r} is not one of {', '.join(EXPECTS)}"))
            expect = None
        out.append(PriceStep(at, vals[0], vals[1], expect,
                             _num(p, "within_s", w, 10.0, probs, positive=True)))
    return tuple(out)


def _mqtt_keys(d: dict[str, Any], faults: list[Fault], probs: list[Problem]
               ) -> tuple[bool, dict[str, Any] | None]:
    """`mqtt` (default true) and the `[satellite]` table, checked against the faults."""
    mqtt_on = d.get("mqtt", True)
    if not isinstance(mqtt_on, bool):
        probs.append(Problem("mqtt", f"must be true or false, got {mqtt_on!r}"))
        mqtt_on = True
    sat = d.get("satellite")
    if sat is not None and not isinstance(sat, dict):
        probs.append(Problem("satellite", "must be a table (the controller's [satellite])"))
        sat = None
    if sat is not None and not mqtt_on:
        probs.append(Problem("satellite", "needs mqtt = true (the board talks MQTT)"))
    if sat is not None:  # it becomes the controller's [satellite]: the same model checks it
        from pydantic import ValidationError

        from controller.config.satellite import SatelliteSection

        try:
            SatelliteSection.model_validate({"id": "tank1", **sat})
        except ValidationError as e:
            probs += [Problem(".".join(["satellite", *map(str, err["loc"])]), err["msg"])
                      for err in e.errors()]
    if sat is not None and "tank" in d.get("drop_sections", []):
        probs.append(Problem("satellite", "needs the site's [tank] (do not drop it)"))
    for i, f in enumerate(faults):
        if f.kind in ("broker_restart", "dr_cap") and not mqtt_on:
            probs.append(Problem(f"faults[{i}].kind", f"{f.kind} needs mqtt = true"))
        if (f.kind.startswith("tank_sensor_") or f.kind == "satellite_link_down") and (
                sat is None):
            probs.append(Problem(f"faults[{i}].kind", f"{f.kind} needs a [satellite] table"))
    return mqtt_on, sat


def load_scenario(path: Path) -> Scenario:
    try:
        with path.open("rb") as f:
            d = tomllib.load(f)
    except OSError as e:
        raise InputError(str(path), [Problem("", f"cannot read: {e.strerror}")]) from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), [Problem("", f"not valid TOML: {e}")]) from e
    return parse_scenario(d, str(path), path)


def site_dict_for(s: Scenario) -> dict[str, Any]:
    """The scenario's site file with its patches applied (the plant's site)."""
    with s.site_file.open("rb") as f:
        d: dict[str, Any] = tomllib.load(f)
    for sec in s.drop_sections:
        d.pop(sec, None)
    for sec, fields in s.patches.items():
        d[sec] = {**d.get(sec, {}), **fields}
    d["miners"] = [{**m, **s.miner_patch, **s.miner_patches.get(m["name"], {})}
                   for m in d.get("miners", [])]
    return d
