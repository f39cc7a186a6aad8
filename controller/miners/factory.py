"""Build drivers from the site file: validate each `driver` table, check it fits `actuation`.

Every problem of every miner is collected and raised together as one InputError, with the
TOML path of the field (`miners[1].driver.port`), before any driver is created — nothing is
half-built. The fit check is where declared capabilities meet the control core: a
continuous driver can serve `power_target` (or `profiles`), a stepped one only `profiles`,
a relay only `relay`, and read-only telemetry cannot actuate at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from controller.config.load import problems_from_validation
from controller.config.models import Actuation, MinerConfig, SiteConfig
from controller.errors import InputError, Problem
from controller.miners.avalon import AvalonDriver
from controller.miners.axeos import AxeOsDriver, PowerCurve
from controller.miners.base import Control, MinerDriver
from controller.miners.braiins import BraiinsDriver
from controller.miners.cgminer import CgminerDriver
from controller.miners.config import (
    AvalonSettings,
    AxeOsSettings,
    BraiinsSettings,
    CgminerSettings,
    DriverSettings,
    LuxosSettings,
    ShellySettings,
    TasmotaSettings,
    VnishSettings,
    WhatsminerSettings,
    parse_driver_settings,
)
from controller.miners.luxos import LuxosDriver
from controller.miners.shelly import ShellyDriver
from controller.miners.tasmota import TasmotaDriver
from controller.miners.vnish import VnishDriver
from controller.miners.whatsminer import WhatsminerDriver

log = logging.getLogger(__name__)

DRIVER_CLASSES: dict[str, type[MinerDriver]] = {
    "braiins-os": BraiinsDriver, "axeos": AxeOsDriver, "whatsminer": WhatsminerDriver,
    "vnish": VnishDriver, "luxos": LuxosDriver, "avalon": AvalonDriver,
    "shelly": ShellyDriver, "tasmota": TasmotaDriver, "cgminer": CgminerDriver,
}
FITS: dict[Control, tuple[Actuation, ...]] = {
    Control.CONTINUOUS: (Actuation.POWER_TARGET, Actuation.PROFILES),
    Control.STEPPED: (Actuation.PROFILES,),
    Control.ON_OFF: (Actuation.RELAY,),
    Control.READ_ONLY: (),
}


def driver_can_pause(driver: Mapping[str, Any]) -> bool:
    """Whether a miner with this `driver` table can be paused (stop drawing power).

    The driver class decides (`MinerDriver.can_pause_with`: AxeOS only with `use_pause`,
    read-only telemetry never). A table without a known api is taken as pausable: no driver
    says otherwise (a simulation-only site); one that does not validate is asked without
    settings (its driver's default)."""
    api = driver.get("api")
    cls = DRIVER_CLASSES.get(api) if isinstance(api, str) else None
    if cls is None:
        return True
    try:
        settings: object = parse_driver_settings(dict(driver))
    except ValidationError:
        settings = None
    return cls.can_pause_with(settings)


def can_pause(m: MinerConfig) -> bool:
    """False for a miner whose firmware cannot pause: told to stop, it stays at its minimum."""
    return driver_can_pause(m.driver)


def held_at_min_w(miners: Iterable[MinerConfig]) -> float:
    """What miners whose firmware cannot pause still draw when all are told to stop: the
    sum of their minimums (a floor no controller decision can remove)."""
    return sum(m.min_power_w for m in miners if not can_pause(m))


def _fit_problems(where: str, m: MinerConfig, s: DriverSettings) -> list[Problem]:
    control = DRIVER_CLASSES[s.api].control
    out: list[Problem] = []
    if m.actuation not in FITS[control]:
        can = " or ".join(f"'{a}'" for a in FITS[control]) or "nothing (read-only telemetry)"
        out.append(Problem(f"{where}.api", f"driver '{s.api}' is {control} control: it can "
                           f"serve actuation {can}, not '{m.actuation}'"))
    if isinstance(s, AvalonSettings) and m.profiles_w is not None and len(m.profiles_w) > 3:
        out.append(Problem(f"{where}.api", "Avalon has three work modes (0, 1, 2): profiles_w "
                           f"lists {len(m.profiles_w)} levels"))
    if isinstance(s, AxeOsSettings):
        try:
            curve = PowerCurve.load(s.curve)
        except (OSError, ValueError, KeyError) as err:
            out.append(Problem(f"{where}.curve", f"cannot load curve {s.curve!r}: {err}"))
        else:
            if m.min_power_w < curve.min_power_w - 1e-9 or m.max_power_w > curve.max_power_w:
                out.append(Problem(f"{where}.curve", f"curve covers {curve.min_power_w:g}.."
                           f"{curve.max_power_w:g} W but the miner is configured "
                           f"{m.min_power_w:g}..{m.max_power_w:g} W"))
    return out


def _kwargs(s: DriverSettings, clock: Callable[[], float]) -> dict[str, Any]:
    kw: dict[str, Any] = {"timeout_s": s.timeout_s, "settle_margin_s": s.settle_margin_s,
                          "clock": clock, "host": s.host, "port": s.port}
    if isinstance(s, BraiinsSettings):
        kw |= {"username": s.username, "password": s.resolve_password("")}
    elif isinstance(s, AxeOsSettings):
        kw |= {"curve": PowerCurve.load(s.curve), "min_write_interval_s": s.min_write_interval_s,
               "use_pause": s.use_pause}
    elif isinstance(s, WhatsminerSettings):
        kw |= {"account": s.account, "password": s.resolve_password(""),
               "rated_power_w": s.rated_power_w, "mode": s.mode}
    elif isinstance(s, VnishSettings):
        kw |= {"password": s.resolve_password("admin")}
    elif isinstance(s, ShellySettings | TasmotaSettings):
        if s.telemetry is not None:
            kw["telemetry"] = (s.telemetry.host, s.telemetry.port)
        if isinstance(s, ShellySettings):
            kw["switch_id"] = s.switch_id
        else:
            kw |= {"topic": s.topic, "username": s.username, "password": s.password}
    elif isinstance(s, AvalonSettings):
        kw["level_command"] = s.level_command
    elif isinstance(s, LuxosSettings | CgminerSettings):
        pass
    return kw


def _settings_problems(i: int, m: MinerConfig, *, require: bool, resolve_secrets: bool
                       ) -> tuple[DriverSettings | None, list[Problem]]:
    """One miner's driver table: its settings, or every problem (paths from the root)."""
    where = f"miners[{i}].driver"
    if not m.driver:
        if require:
            return None, [Problem(where, "is empty: needs at least api and host")]
        return None, []
    try:
        s = parse_driver_settings(dict(m.driver))
    except ValidationError as err:
        problems = []
        for p in problems_from_validation(err):
            # Drop the union tag pydantic puts first ('braiins-os.port' -> 'port').
            head = p.where.split(".")[0]
            tail = p.where.split(".", 1)[1] if head in DRIVER_CLASSES and "." in p.where \
                else ("" if head in DRIVER_CLASSES else p.where)
            if tail == "(top level)":
                tail = ""
            if not tail and "tag" in p.reason:
                tail = "api"  # an unknown api: say which key
            problems.append(Problem(f"{where}.{tail}" if tail else where, p.reason))
        return None, problems
    problems = _fit_problems(where, m, s)
    resolve = getattr(s, "resolve_password", None)
    if resolve_secrets and resolve is not None:
        try:
            resolve()
        except LookupError as err:
            problems.append(Problem(f"{where}.password_env", str(err)))
    return (None if problems else s), problems


def driver_problems(cfg: SiteConfig) -> list[Problem]:
    """What is wrong with the driver tables that are there: the part of the driver checks
    that belongs to the one site validation (`hearth config check`, MQTT config/set, the
    HMI's validate and save, `hearth run`). An empty table (a site for `hearth sim`) and a
    password_env missing from this process's environment are checked by `hearth run`."""
    out: list[Problem] = []
    for i, m in enumerate(cfg.miners):
        out += _settings_problems(i, m, require=False, resolve_secrets=False)[1]
    return out


def validate_drivers(cfg: SiteConfig) -> list[DriverSettings]:
    """Every miner's settings, or an InputError listing every problem (paths from the root)."""
    problems: list[Problem] = []
    out: list[DriverSettings] = []
    for i, m in enumerate(cfg.miners):
        s, found = _settings_problems(i, m, require=True, resolve_secrets=True)
        problems += found
        if s is not None:
            out.append(s)
    if problems:
        for p in problems:
            log.warning("refused driver settings: %s", p)
        raise InputError("miners", problems)
    return out


def build_valid_drivers(cfg: SiteConfig, clock: Callable[[], float] = time.monotonic,
                        ) -> dict[str, MinerDriver]:
    """Drivers for the miners whose settings are usable (safe mode: to hold them off)."""
    drivers: dict[str, MinerDriver] = {}
    for i, m in enumerate(cfg.miners):
        s, _ = _settings_problems(i, m, require=True, resolve_secrets=True)
        if s is not None:
            drivers[m.name] = DRIVER_CLASSES[s.api](m, **_kwargs(s, clock))
    return drivers


def build_drivers(cfg: SiteConfig, clock: Callable[[], float] = time.monotonic,
                  ) -> dict[str, MinerDriver]:
    """One driver per miner, in site order. Raises InputError before building anything."""
    settings = validate_drivers(cfg)
    drivers: dict[str, MinerDriver] = {}
    for m, s in zip(cfg.miners, settings, strict=True):
        drivers[m.name] = DRIVER_CLASSES[s.api](m, **_kwargs(s, clock))
    return drivers
