"""Home Assistant MQTT device-based discovery for a site (one device, all its entities).

Source: Home Assistant documentation, "MQTT Discovery" -> "Device discovery payload"
(home-assistant.io source/_integrations/mqtt.markdown): topic
`<prefix>/device/<object_id>/config`; root `dev` and `o` are mandatory; each component in
`cmps` needs `p` (platform) and a `unique_id`; shared options may include availability,
`state_topic`, `command_topic`, `qos`. A component is removed by an update where it is only
`{"p": <platform>}`, followed by an update without it. Sensor device/state classes follow
HA's sensor rules (homeassistant/components/sensor/const.py, DEVICE_CLASS_STATE_CLASSES and
DEVICE_CLASS_UNITS): power and temperature are `measurement`, energy `total_increasing`,
monetary `total` (with `last_reset_value_template`, as our money values restart daily).
Energy sensors are in kWh with state class total_increasing, which the Energy dashboard
accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from controller.bridge.topics import Topics
from controller.config.models import Mode, SiteConfig

ORIGIN_NAME = "hearth"
MONEY_SENSORS = (("btc_value", "Bitcoin value today"), ("heat_value", "Heat value today"),
                 ("power_cost", "Power cost today"), ("net", "Net today"))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("hearth")
    except Exception:  # not installed as a package: still announce
        return "0"


def _sensor(topics: Topics, suffix: str, key: str, name: str, *, unit: str | None = None,
            device_class: str | None = None, state_class: str | None = None,
            expire_s: int, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "p": "sensor",
        "name": name,
        "state_topic": topics.state(suffix),
        "value_template": f"{{{{ value_json.{key} }}}}",
        "expire_after": expire_s,
    }
    if unit is not None:
        c["unit_of_measurement"] = unit
    if device_class is not None:
        c["device_class"] = device_class
    if state_class is not None:
        c["state_class"] = state_class
    c.update(extra)
    return c


def components(cfg: SiteConfig, topics: Topics, expire_s: int) -> dict[str, dict[str, Any]]:
    """Component id -> component config (without unique_id; added by `device_payload`)."""
    cur = cfg.site.currency
    c: dict[str, dict[str, Any]] = {}

    def power(key: str, name: str) -> None:
        c[key] = _sensor(topics, "power", key, name, unit="W", device_class="power",
                         state_class="measurement", expire_s=expire_s)

    power("grid_power_w", "Grid power")
    power("pv_power_w", "PV power")
    power("miner_power_w", "Miner power")
    power("house_power_w", "House power")
    if cfg.battery is not None:
        power("battery_power_w", "Battery power")
        c["soc_pct"] = _sensor(topics, "battery", "soc_pct", "Battery", unit="%",
                               device_class="battery", state_class="measurement",
                               expire_s=expire_s)
    if cfg.tank is not None:
        c["tank_temp_c"] = _sensor(topics, "tank", "tank_temp_c", "Tank temperature",
                                   unit="°C", device_class="temperature",
                                   state_class="measurement", expire_s=expire_s)
    reset = "{{ value_json.day_start }}"
    # The four money words (docs/ledger.md), one sensor each: net = btc + heat - power cost.
    for key, name in MONEY_SENSORS:
        c[f"{key}_today"] = _sensor(topics, "today", key, name, unit=cur,
                                    device_class="monetary", state_class="total",
                                    expire_s=expire_s, last_reset_value_template=reset)
    c["sats_today"] = _sensor(topics, "today", "sats", "Sats today", unit="sat",
                              state_class="total_increasing", expire_s=expire_s,
                              icon="mdi:bitcoin")
    c["heat_energy_today"] = _sensor(topics, "today", "heat_kwh", "Heat today", unit="kWh",
                                     device_class="energy", state_class="total_increasing",
                                     expire_s=expire_s)
    c["miner_energy_today"] = _sensor(topics, "today", "miner_energy_kwh", "Miner energy today",
                                      unit="kWh", device_class="energy",
                                      state_class="total_increasing", expire_s=expire_s)
    c["limiter"] = _sensor(topics, "control", "limiter", "Limiter", expire_s=expire_s,
                           entity_category="diagnostic")
    # The bitcoin terms in force (controller/runtime/market.py): the price the sats are
    # valued at, and whether it is live (feed, mqtt) or the static [bitcoin] fallback.
    c["btc_price"] = _sensor(topics, "bitcoin", "btc_price", "BTC price", unit=f"{cur}/BTC",
                             state_class="measurement", expire_s=expire_s, icon="mdi:bitcoin")
    c["bitcoin_terms_source"] = _sensor(topics, "bitcoin", "source", "Bitcoin terms source",
                                        expire_s=expire_s, entity_category="diagnostic")

    modes = [Mode.GRID.value] + ([Mode.HEATING.value] if cfg.tank is not None else [])
    c["mode"] = {
        "p": "select",
        "name": "Mode",
        "options": modes,
        "command_topic": topics.cmd("mode"),
        "command_template": '{"mode": "{{ value }}"}',
        "state_topic": topics.state("control"),
        "value_template": "{{ value_json.mode }}",
    }
    c["pause_all"] = {
        "p": "switch",
        "name": "Pause all miners",
        "command_topic": topics.cmd("pause_all"),
        "payload_on": '{"paused": true}',
        "payload_off": '{"paused": false}',
        "state_topic": topics.state("control"),
        "value_template": "{{ 'ON' if value_json.paused else 'OFF' }}",
        "state_on": "ON",
        "state_off": "OFF",
    }
    capacity = max(10.0, round(cfg.miner_capacity_w / 10) * 10)
    c["dr_cap"] = {
        "p": "number",
        "name": "Miner power cap",
        "device_class": "power",
        "unit_of_measurement": "W",
        "min": 0,
        "max": capacity,
        "step": 10,
        "mode": "box",
        "command_topic": topics.cmd("dr_cap"),
        "command_template": '{"cap_w": {{ value }}}',
        "state_topic": topics.state("control"),
        "value_template": (f"{{{{ value_json.dr_cap_w if value_json.dr_cap_w is not none "
                           f"else {capacity:g} }}}}"),
    }
    # 0 ends the request (cmd/dr_absorb refuses absorb_w = 0: it takes null for that); the
    # top is rounded down, as cmd/dr_absorb refuses more than the miners' capacity.
    absorb_max = max(10.0, math.floor(cfg.miner_capacity_w / 10) * 10)
    c["dr_absorb"] = {
        "p": "number",
        "name": "Miner power floor",
        "device_class": "power",
        "unit_of_measurement": "W",
        "min": 0,
        "max": absorb_max,
        "step": 10,
        "mode": "box",
        "command_topic": topics.cmd("dr_absorb"),
        "command_template": ('{% if value | float(0) > 0 %}{"absorb_w": {{ value }}}'
                             '{% else %}{"absorb_w": null}{% endif %}'),
        "state_topic": topics.state("control"),
        "value_template": ("{{ value_json.dr_absorb_w if value_json.dr_absorb_w is not none "
                           "else 0 }}"),
    }
    if cfg.tank is not None:
        t = cfg.tank
        c["tank_target"] = {
            "p": "number",
            "name": "Tank target",
            "device_class": "temperature",
            "unit_of_measurement": "°C",
            "min": t.min_c + 0.5,
            "max": t.max_c - 0.5,
            "step": 0.5,
            "mode": "box",
            "command_topic": topics.cmd("tank_target"),
            "command_template": '{"target_c": {{ value }}}',
            "state_topic": topics.state("tank"),
            "value_template": "{{ value_json.tank_target_c }}",
        }
    for m in cfg.miners:
        suffix = f"miners/{m.name}"
        base = f"miner_{m.name}"
        c[f"{base}_power"] = _sensor(topics, suffix, "power_w", f"{m.name} power", unit="W",
                                     device_class="power", state_class="measurement",
                                     expire_s=expire_s)
        c[f"{base}_hashrate"] = _sensor(topics, suffix, "hashrate_ths", f"{m.name} hash rate",
                                        unit="TH/s", state_class="measurement",
                                        expire_s=expire_s, icon="mdi:pickaxe")
        c[f"{base}_state"] = _sensor(topics, suffix, "state", f"{m.name} state",
                                     expire_s=expire_s, entity_category="diagnostic")
        c[f"{base}_enabled"] = {
            "p": "switch",
            "name": f"{m.name} enabled",
            "command_topic": topics.cmd("miner_enable"),
            "payload_on": json.dumps({"miner": m.name, "enabled": True}),
            "payload_off": json.dumps({"miner": m.name, "enabled": False}),
            "state_topic": topics.state(suffix),
            "value_template": "{{ 'ON' if value_json.enabled else 'OFF' }}",
            "state_on": "ON",
            "state_off": "OFF",
        }
    return c


def device_id(cfg: SiteConfig) -> str:
    return f"hearth_{cfg.site.id.replace('-', '_')}"


def device_payload(
    cfg: SiteConfig, topics: Topics, expire_s: int,
    removed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The discovery payload; `removed` (component id -> platform) are sent as {"p": ...}."""
    dev_id = device_id(cfg)
    cmps: dict[str, dict[str, Any]] = {}
    for key, comp in components(cfg, topics, expire_s).items():
        cmps[key] = {**comp, "unique_id": f"{dev_id}_{key}"}
    for key, platform in (removed or {}).items():
        if key not in cmps:
            cmps[key] = {"p": platform}
    version = _version()
    return {
        "dev": {
            "ids": [dev_id],
            "name": cfg.site.name or f"Hearth {cfg.site.id}",
            "mf": "Hearth",
            "mdl": "Heat-reuse microgrid controller",
            "sw": version,
        },
        "o": {"name": ORIGIN_NAME, "sw": version},
        "availability": [{"topic": topics.availability, "payload_available": "online",
                          "payload_not_available": "offline"}],
        "qos": 1,
        "cmps": cmps,
    }


def announced_platforms(payload: Any) -> dict[str, str]:
    """Component id -> platform of a discovery payload we (or an earlier run) published."""
    out: dict[str, str] = {}
    if isinstance(payload, Mapping) and isinstance(payload.get("cmps"), Mapping):
        for key, comp in payload["cmps"].items():
            # A removal stub ({"p": ...} alone) is not an announced entity.
            if isinstance(comp, Mapping) and isinstance(comp.get("p"), str) and len(comp) > 1:
                out[str(key)] = comp["p"]
    return out
