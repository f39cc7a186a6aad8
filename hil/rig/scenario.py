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
               "miner_hang", "kill_restart", "pv_step")
CHECKS = ("import_limit", "tank_max", "stale_to_zero", "min_on_off", "recovery", "ledger")


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
             "checks"}
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
        if kind == "miner_hang" and not isinstance(miner, str):
            probs.append(Problem(f"{w}miner", "is required for miner_hang (the miner's name)"))
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
    if probs:
        raise InputError(source, probs)
    return Scenario(
        name=str(name), description=str(d.get("description", "")), site_file=site_file,
        trace=trace, duration_s=duration, tick_s=tick_s, speed=speed,
        recovery_s=recovery_s, recovery_band_w=band_w,
        drop_sections=tuple(drop), patches=patches, miner_patch=miner_patch,
        miner_patches=miner_patches, faults=tuple(sorted(faults, key=lambda f: f.at_s)),
        checks=tuple(checks), path=path)


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
