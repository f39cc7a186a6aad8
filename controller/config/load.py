"""Load a site TOML file and turn pydantic errors into TOML paths."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.config.models import SiteConfig
from controller.errors import InputError, Problem


def toml_path(loc: tuple[int | str, ...]) -> str:
    """('miners', 1, 'max_power_w') -> 'miners[1].max_power_w'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def problems_from_validation(err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        # Tagged/union sub-locations add no information for a TOML author.
        loc = tuple(p for p in e["loc"] if p not in ("function-after",))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        problems.append(Problem(toml_path(loc) or "(top level)", msg))
    return problems


def parse_site(data: dict[str, Any], source: str = "<config>") -> SiteConfig:
    """Validate an already-parsed TOML document: the site models, then the driver tables."""
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError as err:
        raise InputError(source, problems_from_validation(err)) from None
    # The driver tables are part of the one validation (config check, MQTT config/set, the
    # HMI, hearth run): a config accepted here must not stop the service at its next start.
    from controller.miners.factory import driver_problems

    problems = site_bound_problems(cfg) + driver_problems(cfg)
    if problems:
        raise InputError(source, problems)
    return cfg


def site_bound_problems(cfg: SiteConfig) -> list[Problem]:
    """Bounds that depend on the site as a whole, with the path of the field that breaks
    them: no miner may draw more than the site could ever deliver (import limit, PV
    inverter, battery; a miner above the import limit alone may still run on surplus, the
    import cap keeps it within the limit), and no DR cap level can exceed that either."""
    out: list[Problem] = []
    limit = cfg.site_power_bound_w
    for i, m in enumerate(cfg.miners):
        if m.max_power_w > limit:
            out.append(Problem(f"miners[{i}].max_power_w", f"{m.max_power_w:g} W is above "
                               f"what the site can deliver ({limit:g} W: import limit, "
                               "inverter, battery)"))
    if cfg.openadr is not None and cfg.openadr.simple_level_cap_w is not None:
        bound = cfg.site_power_bound_w
        for i, w in enumerate(cfg.openadr.simple_level_cap_w):
            if w > bound:
                out.append(Problem(f"openadr.simple_level_cap_w[{i}]", f"{w:g} W is above "
                                   f"what the site can deliver ({bound:g} W: import limit, "
                                   "inverter, battery)"))
    return out


def load_site(path: str | Path) -> SiteConfig:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise InputError(str(p), [Problem("", f"cannot read: {err.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(str(p), [Problem("", f"not UTF-8 text ({err.reason})")]) from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(str(p), [Problem("", f"TOML syntax error: {err}")]) from None
    return parse_site(data, str(p))


def config_json_schema() -> dict[str, Any]:
    return SiteConfig.model_json_schema()
