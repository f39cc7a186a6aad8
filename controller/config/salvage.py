"""What safe mode can run from a site document that does not validate.

A site file that parses but fails validation (or the last good copy of one that does not
parse) still says how the site is reached: its `[site] id` (every MQTT topic is named
after it), `[mqtt]` and `[hmi]`. Safe mode keeps only what is needed to be repaired
remotely and to hold the miners off; each section is validated on its own, so one bad
value elsewhere does not take the bridge down with it.

- `site`: the section if it validates, else its `id` alone (with neutral stand-ins for the
  grid limits, unused while the miners are held); no valid id: nothing can be salvaged.
- `mqtt`: the section if it validates, else no bridge.
- `hmi`: the section if it validates (missing: its defaults, as in a valid site), else no
  HMI: an invalid `[hmi]` must not open the HMI on an address the installer did not choose.
- `service`: the section if it validates, else only its `data_dir` (where the HMI's logins
  and the state live), else the defaults.
- `ledger`: the section if it validates (the HMI shows its history), else none.
- `miners`: each entry that validates on its own, so its driver can hold it off.
Everything else takes its defaults: safe mode runs no devices, ledger writer, plan or DR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controller.config.hmi import HmiSection
from controller.config.ledger import LedgerSection
from controller.config.models import MinerConfig, PvSection, SiteConfig, SiteSection
from controller.config.mqtt import MqttSection
from controller.config.service import ServiceSection

# Stand-ins for required values of sections that did not validate. The miners are held
# off in safe mode, so nothing is controlled against them; they are never written anywhere.
_SITE_STANDIN = {"grid_import_limit_w": 1.0, "grid_export_limit_w": 0.0, "main_fuse_a": 1.0}
_PV_STANDIN = PvSection(peak_w=1.0, inverter_max_w=1.0)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Salvaged:
    """A config safe mode can run, and what it had to leave out (for the log)."""

    config: SiteConfig
    left_out: list[str]

    @property
    def reachable(self) -> bool:
        """Whether an installer can reach it to fix the file: a bridge or an HMI."""
        return self.config.mqtt is not None or self.config.hmi.enabled


def _valid(model: type[M], data: Any) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def salvage_site(raw: Any) -> Salvaged | None:
    """The parts of a parsed site document safe mode can run with; None without a site id."""
    if not isinstance(raw, dict):
        return None
    left_out: list[str] = []
    site_raw = raw.get("site")
    site = _valid(SiteSection, site_raw)
    if site is None:
        site_id = site_raw.get("id") if isinstance(site_raw, dict) else None
        site = _valid(SiteSection, {"id": site_id, **_SITE_STANDIN})
        if site is None:
            return None
        left_out.append("site (all but its id)")
    pv = _valid(PvSection, raw.get("pv"))
    if pv is None:
        pv = _PV_STANDIN
    mqtt = _valid(MqttSection, raw["mqtt"]) if "mqtt" in raw else None
    if mqtt is None:
        left_out.append("mqtt (no bridge)" if "mqtt" in raw else "mqtt (none: no bridge)")
    hmi = _valid(HmiSection, raw.get("hmi", {}))
    if hmi is None:
        hmi = HmiSection(enabled=False)
        left_out.append("hmi (no HMI)")
    service = _valid(ServiceSection, raw.get("service", {}))
    if service is None:
        data_dir = raw["service"].get("data_dir") if isinstance(raw["service"], dict) else None
        service = _valid(ServiceSection, {"data_dir": data_dir}) or ServiceSection()
        left_out.append("service (all but its data_dir)")
    ledger = _valid(LedgerSection, raw.get("ledger", {}))
    if ledger is None:
        ledger = LedgerSection(enabled=False)
        left_out.append("ledger (no history on the HMI)")
    miners_raw = raw.get("miners")
    miners: list[MinerConfig] = []
    for i, m in enumerate(miners_raw if isinstance(miners_raw, list) else []):
        valid = _valid(MinerConfig, m)
        if valid is None or any(valid.name == k.name for k in miners):
            left_out.append(f"miners[{i}]")
        else:
            miners.append(valid)
    # model_construct: the sections were validated one by one; the site-wide rules (at
    # least one miner, a tank for miners that heat it, ...) are what failed.
    cfg = SiteConfig.model_construct(site=site, pv=pv, mqtt=mqtt, hmi=hmi, service=service,
                                     ledger=ledger, miners=miners)
    return Salvaged(cfg, left_out)
