"""`hearth emulate`: miner firmware emulators from the command line, no hardware needed.

- `hearth emulate miner --api NAME --port P`: one emulated miner speaking a firmware's API
  (its model from `--profile`, else a typical miner for that API); `--rpc-port` adds the
  cgminer-style API that Braiins OS, Vnish and Whatsminer also serve (what pyasic and
  other clients identify a miner by).
- `hearth emulate site --config SITE`: the emulated site of `hearth demo` (plant on a
  real-data trace, Modbus GX meter, one emulator per miner of the site file, any API but
  Tasmota) without starting `hearth run`; the site file `hearth run` needs is written to
  `--out` so an installer or an integrator (Home Assistant, Node-RED) can point at it.
Both run until Ctrl-C (or `--seconds`). Emulators listen on loopback unless `--host` says
otherwise. The product never imports this module at import time (controller/cli.py
imports it inside `build_parser`, as it does `hil.demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import tomli_w

from controller.config.load import parse_site
from controller.errors import InputError, Problem
from controller.miners.profiles import load_profile, profile_names
from hil.miners.core import EmulatedMiner
from hil.miners.factory import DEFAULT_PASSWORDS, EMULATED_APIS, emulator_for
from hil.miners.servers import Emulator

ROOT = Path(__file__).resolve().parent.parent.parent
# A typical miner per API when no --profile is given (site-file `[[miners]]` fields)
_EFF = [{"power_w": 900, "j_per_th": 30.0}, {"power_w": 1400, "j_per_th": 34.0}]
TYPICAL: dict[str, dict[str, Any]] = {
    "braiins-os": {"kind": "antminer-s9-braiins", "actuation": "power_target",
                   "min_power_w": 900, "max_power_w": 1400, "efficiency": _EFF},
    "whatsminer": {"kind": "whatsminer-m30s-plus", "actuation": "power_target",
                   "min_power_w": 1700, "max_power_w": 3400,
                   "efficiency": [{"power_w": 1700, "j_per_th": 31.0},
                                  {"power_w": 3400, "j_per_th": 34.0}]},
    "vnish": {"kind": "antminer-s19-vnish", "actuation": "profiles", "min_power_w": 1100,
              "max_power_w": 1500, "profiles_w": [1100, 1300, 1500], "efficiency": _EFF},
    "luxos": {"kind": "antminer-s9-luxos", "actuation": "profiles", "min_power_w": 1100,
              "max_power_w": 1500, "profiles_w": [1100, 1300, 1500], "efficiency": _EFF},
    "shelly": {"kind": "s9-on-a-plug", "actuation": "relay", "min_power_w": 1300,
               "max_power_w": 1300, "efficiency": _EFF},
    "cgminer": {"kind": "antminer-s9-stock", "actuation": "relay", "min_power_w": 1300,
                "max_power_w": 1300, "efficiency": _EFF},
}
DEFAULT_PROFILE = {"axeos": "bitaxe-gamma", "avalon": "avalon-nano-3s"}
_SITE = {"site": {"id": "emulate", "grid_import_limit_w": 10000, "grid_export_limit_w": 8000,
                  "main_fuse_a": 25},
         "pv": {"peak_w": 8000, "inverter_max_w": 8000}}


def miner_table(api: str, profile: str | None, driver: dict[str, Any]) -> dict[str, Any]:
    """The `[[miners]]` entry the emulator runs (validated by the site model)."""
    ref = profile or DEFAULT_PROFILE.get(api)
    if ref is not None:
        prof = load_profile(ref)
        if prof.api != api:
            raise InputError("--profile", [Problem("profile", f"{ref!r} speaks {prof.api!r}, "
                                                   f"not {api!r}")])
        extra = {"curve": ref} if api == "axeos" else {}
        if prof.level_command is not None:
            extra["level_command"] = prof.level_command
        return prof.miner_entry("emulated", {**driver, **extra})
    return {"name": "emulated", **TYPICAL[api], "ramp_w_per_s": 100, "restart_s": 10,
            "heats_tank": False, "driver": driver}


async def _until_stopped(seconds: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_miner(a: argparse.Namespace) -> int:
    driver: dict[str, Any] = {"api": a.api, "host": a.host, "port": a.port}
    if a.password is not None:
        driver["password"] = a.password
    entry = miner_table(a.api, a.profile, driver)
    cfg = parse_site({**_SITE, "miners": [entry]}, "hearth emulate").miners[0]
    miner = EmulatedMiner(cfg, start_w=cfg.max_power_w)
    emu: Emulator = emulator_for(a.api, miner, entry["driver"])
    if a.rpc_port is not None:
        if not hasattr(emu, "rpc"):
            raise InputError("--rpc-port", [Problem("rpc-port", f"{a.api} has no second API")])
        await emu.start(a.host, a.port, rpc_port=a.rpc_port)  # type: ignore[call-arg]
    else:
        await emu.start(a.host, a.port)
    pw = entry["driver"].get("password", DEFAULT_PASSWORDS.get(a.api))
    print(f"emulated {cfg.kind} ({a.api}) on {a.host}:{emu.port}"
          + (f", cgminer-style API on {a.host}:{a.rpc_port}" if a.rpc_port else "")
          + f"; {cfg.min_power_w:g}..{cfg.max_power_w:g} W"
          + (f", password {pw!r}" if pw else "")
          + "\nsite file entry:\n" + tomli_w.dumps({"miners": [{
              **{k: v for k, v in entry.items() if k != "driver"},
              "driver": {**entry["driver"], "port": emu.port,
                         **({"password": pw} if pw else {})}}]}), flush=True)
    try:
        await _until_stopped(a.seconds)
    finally:
        await emu.stop()
    return 0


async def run_site(a: argparse.Namespace) -> int:
    from hil.site import EmulatedSite

    a.out.mkdir(parents=True, exist_ok=True)
    site = EmulatedSite(a.config, a.trace, speed=a.speed, start_s=a.start_hour * 3600)
    await site.start()
    try:
        cfg_path = a.out / "site.toml"
        cfg_path.write_bytes(tomli_w.dumps(site.controller_site(a.out.resolve(),
                                                                hmi_port=a.hmi_port)).encode())
        print(f"emulated site {site.cfg.site.id}: Modbus GX on 127.0.0.1:{site.modbus_port}; "
              + ", ".join(f"{n} ({site.cfg.miners[i].driver.get('api')}) on 127.0.0.1:"
                          f"{e.port}" for i, (n, e) in enumerate(site.miner_emulators.items()))
              + f"\nrun the controller against it: hearth run --config {cfg_path}", flush=True)
        await _until_stopped(a.seconds)
    finally:
        await site.stop()
    return 0


def register(sub: Any) -> None:
    em = sub.add_parser("emulate", help="run miner firmware emulators (no hardware needed)")
    em_sub = em.add_subparsers(dest="emulate_command", required=True)
    m = em_sub.add_parser("miner", help="one emulated miner speaking a firmware API")
    m.add_argument("--api", required=True, choices=EMULATED_APIS)
    m.add_argument("--port", type=int, required=True, help="TCP port of the firmware API")
    m.add_argument("--host", default="127.0.0.1", help="address to listen on")
    m.add_argument("--rpc-port", type=int,
                   help="also the cgminer-style API (braiins-os, vnish, whatsminer)")
    m.add_argument("--profile", choices=profile_names(),
                   help="device profile (controller/miners/profiles)")
    m.add_argument("--password", help="the firmware login (default: the factory one)")
    m.add_argument("--seconds", type=float, help="stop by itself after this long")
    m.set_defaults(func=lambda a: asyncio.run(run_miner(a)))
    s = em_sub.add_parser("site", help="the emulated site of a site file (no hearth run)")
    s.add_argument("--config", type=Path, required=True, help="site TOML")
    s.add_argument("--trace", type=Path, default=ROOT / "hil/traces/house-spring-day.csv")
    s.add_argument("--out", type=Path, default=Path("out/emulate"),
                   help="where the site file for hearth run is written")
    s.add_argument("--speed", type=float, default=1.0, help="plant time per real second")
    s.add_argument("--start-hour", type=float, default=10.0, help="hour of the trace day")
    s.add_argument("--hmi-port", type=int, default=None,
                   help="HMI port for the written site file (default: HMI off)")
    s.add_argument("--seconds", type=float, help="stop by itself after this long")
    s.set_defaults(func=lambda a: asyncio.run(run_site(a)))
