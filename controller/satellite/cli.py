"""`hearth satellite run|provision`: talk to the tank satellite, or write its config.json.

`run` keeps the heartbeat going and the relays where you ask, printing each telemetry
message on one line; stop it (Ctrl-C, SIGTERM) and it switches the contactor off first.
`provision` writes the board's config.json from the site file, the Wi-Fi and broker
settings and the sensor ROM codes (passwords from the environment, never the command line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.errors import InputError, Problem
from controller.satellite.protocol import ROLES, Telemetry

if TYPE_CHECKING:  # heavy imports (paho, pydantic models) only when a command runs
    from controller.bridge.connection import BrokerSettings
    from controller.config.models import SiteConfig
    from controller.config.satellite import SatelliteSection

log = logging.getLogger(__name__)


def _onoff(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"must be 'on' or 'off', not {text!r}")
    return text == "on"


def _hostport(text: str) -> tuple[str, int | None]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}")
    return host, int(port)


def _sensor(text: str) -> tuple[str, str]:
    role, sep, rom = text.partition("=")
    if not sep or role not in ROLES:
        raise argparse.ArgumentTypeError(f"expected ROLE=ROM with ROLE one of {', '.join(ROLES)}")
    return role, rom


def format_telemetry(sat_id: str, t: Telemetry) -> str:
    temps = " ".join(
        f"{role} {v.temp_c:.2f}" if v.temp_c is not None else f"{role} ({v.fault})"
        for role, v in sorted(t.sensors.items(), key=lambda kv: ROLES.index(kv[0]))
    )
    power = f"{t.heat_power_w:.0f} W" if t.heat_power_w is not None else "- W"
    energy = f"{t.energy_wh / 1000:.3f} kWh" if t.energy_wh is not None else "- kWh"
    safe = ",".join(t.safe) or "-"
    return (f"{sat_id} boot {t.boot} seq {t.seq} | {temps} | heat {power} {energy} | "
            f"contactor {'on' if t.contactor else 'off'} pump {'on' if t.pump else 'off'} | "
            f"safe {safe}")


def _load(args: argparse.Namespace) -> tuple[SiteConfig, SatelliteSection, BrokerSettings]:
    from controller.bridge.connection import BrokerSettings
    from controller.config import load_site

    cfg = load_site(args.config)
    problems = []
    if cfg.satellite is None:
        problems.append(Problem("satellite", "the site has no [satellite] section"))
    if cfg.mqtt is None:
        problems.append(Problem("mqtt", "the satellite is reached over MQTT: add [mqtt]"))
    if cfg.satellite is None or cfg.mqtt is None:
        raise InputError(str(args.config), problems)
    broker = BrokerSettings.from_section(cfg.mqtt, Path(args.config).resolve().parent,
                                         cfg.site.id)
    if args.broker:
        host, port = args.broker
        broker = dataclasses.replace(broker, host=host, port=port or broker.port)
    return cfg, cfg.satellite, broker


def _run(args: argparse.Namespace) -> int:
    from controller.satellite.link import SatelliteLink

    cfg, section, broker = _load(args)
    link = SatelliteLink(cfg.site.id, section, broker,
                         tank_max_c=cfg.tank.max_c if cfg.tank else None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lines: list[Telemetry] = []
    link.on_telemetry = lines.append  # list.append is atomic: safe from paho's thread
    link.start()
    if args.contactor is not None or args.pump is not None:
        link.set_relays(bool(args.contactor), args.pump if args.pump is not None else True)
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            link.tick(now)
            while lines:
                t = lines.pop(0)
                print(json.dumps(t.raw) if args.json else format_telemetry(link.sat_id, t),
                      flush=True)
            stop.wait(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        if link.desired is not None and link.desired[0]:
            link.set_relays(False, link.desired[1])
            time.sleep(0.2)  # let paho send it
        link.stop()
    return 0


def crc8(data: bytes) -> int:
    """Dallas/Maxim 1-Wire CRC-8 (Maxim AN27), to catch a mistyped ROM code."""
    crc = 0
    for byte in data:
        b = byte
        for _ in range(8):
            mix = (crc ^ b) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            b >>= 1
    return crc


def _rom_problem(text: str) -> str | None:
    clean = text.replace(":", "").replace("-", "").lower()
    try:
        rom = bytes.fromhex(clean)
    except ValueError:
        return f"{text!r} is not 16 hex digits"
    if len(rom) != 8:
        return f"{text!r} is not 16 hex digits"
    if rom[0] not in (0x28, 0x22):
        return f"family code 0x{rom[0]:02x} is not a DS18B20 (0x28)"
    if crc8(rom[:7]) != rom[7]:
        return "CRC of the ROM code does not match (a typo?)"
    return None


def provision_config(args: argparse.Namespace) -> dict[str, Any]:
    """The board's config.json as a dict (see firmware/config.example.json)."""
    from controller.config import load_site

    cfg = load_site(args.config)
    problems: list[Problem] = []
    if cfg.satellite is None:
        raise InputError(str(args.config), [Problem("satellite", "no [satellite] section")])
    sensors: dict[str, str] = {}
    for role, rom in args.sensor or []:
        bad = _rom_problem(rom)
        if bad:
            problems.append(Problem(f"--sensor {role}", bad))
        elif role in sensors:
            problems.append(Problem(f"--sensor {role}", "given twice"))
        else:
            sensors[role] = rom.replace(":", "").replace("-", "").lower()
    if not sensors:
        problems.append(Problem("--sensor", "give at least the tank sensors as ROLE=ROM"))
    wanted = set(cfg.satellite.cutoff_sensors) | {cfg.satellite.tank_sensor}
    for role in sorted(wanted - set(sensors)):
        problems.append(Problem(f"--sensor {role}", "the [satellite] section uses this sensor"))
    wifi_pw = os.environ.get("HEARTH_WIFI_PASSWORD", "")
    mqtt_pw = os.environ.get("HEARTH_SAT_MQTT_PASSWORD")
    if args.mqtt_user and not mqtt_pw:
        problems.append(Problem("HEARTH_SAT_MQTT_PASSWORD", "set it: the board's broker password"))
    host = args.broker_host or (cfg.mqtt.host if cfg.mqtt else None)
    if not host:
        problems.append(Problem("--broker-host", "required (the site has no [mqtt] host)"))
    if problems:
        raise InputError("satellite provision", problems)
    settings = cfg.satellite.board_settings(cfg.tank.max_c if cfg.tank else None)
    if args.litres_per_pulse is not None:
        settings["litres_per_pulse"] = args.litres_per_pulse
    mqtt: dict[str, Any] = {"host": host, "port": args.broker_port or 1883,
                            "keepalive_s": 30}
    if args.mqtt_user:
        mqtt["user"], mqtt["password"] = args.mqtt_user, mqtt_pw
    return {
        "site_id": cfg.site.id,
        "sat_id": cfg.satellite.id,
        "board": args.board,
        "wifi": {"ssid": args.wifi_ssid, "password": wifi_pw},
        "mqtt": mqtt,
        "sensors": sensors,
        "settings": settings,
    }


def _provision(args: argparse.Namespace) -> int:
    data = provision_config(args)
    out = Path(args.out)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    print(f"{out}: board config for sat {data['sat_id']!r} of site {data['site_id']!r}, "
          f"{len(data['sensors'])} sensor(s); copy it with `make firmware-deploy`")
    return 0


def register(subparsers: Any) -> None:
    sat = subparsers.add_parser("satellite", help="the tank satellite board (firmware/)")
    sub = sat.add_subparsers(dest="satellite_command", required=True)

    run = sub.add_parser("run", help="heartbeat + relays; print the board's telemetry")
    run.add_argument("--config", required=True, help="site TOML with [satellite] and [mqtt]")
    run.add_argument("--broker", type=_hostport, help="HOST[:PORT], overrides [mqtt]")
    run.add_argument("--contactor", type=_onoff, help="on|off: the miners' contactor")
    run.add_argument("--pump", type=_onoff, help="on|off: the circulation pump")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--json", action="store_true", help="print raw telemetry JSON")
    run.set_defaults(func=_run)

    prov = sub.add_parser("provision", help="write the board's config.json")
    prov.add_argument("--config", required=True, help="site TOML with [satellite]")
    prov.add_argument("--out", required=True, help="where to write config.json")
    prov.add_argument("--wifi-ssid", required=True, help="password: $HEARTH_WIFI_PASSWORD")
    prov.add_argument("--sensor", type=_sensor, action="append", metavar="ROLE=ROM",
                      help="e.g. top=28ff641e0f000034 (repeat per sensor)")
    prov.add_argument("--broker-host", help="the broker as the board reaches it")
    prov.add_argument("--broker-port", type=int)
    prov.add_argument("--mqtt-user", help="the board's broker account; password: "
                                          "$HEARTH_SAT_MQTT_PASSWORD")
    prov.add_argument("--board", choices=["esp32", "rp2"], default="esp32")
    prov.add_argument("--litres-per-pulse", type=float)
    prov.set_defaults(func=_provision)
