"""`hearth demo`: an emulated site and the real `hearth run` against it, on one machine.

The emulated site (plant model + Modbus GX emulator + miner API emulators, and for a site
with a tank a Mosquitto broker and the tank satellite's firmware logic) runs in this
process; `hearth run` runs as a separate process against it, exactly as it would on a
Raspberry Pi against real hardware. A status line shows what the plant does; Ctrl-C (or
`--seconds`) stops `hearth run` with SIGTERM (miners to their shutdown state) and then the
emulators.

A lived-in site: before `hearth run` starts, the 24 hours before the replay's start go
through the simulator (the same site, the same controller code) into the ledger, so the
wall page opens with a full day's chart, today's and yesterday's money and heat. At the
plant's own pace (`--speed 1`) `hearth run`'s wall clock is set to the replayed time
(libfaketime: only the wall clock, monotonic time stays real), so the page, the ledger
and the plant tell one time of day.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import tomli_w

from controller.config import SiteConfig
from controller.economics.tariffs import build_tariff
from controller.trace.reader import Trace
from hil.site import EmulatedSite

ROOT = Path(__file__).resolve().parent.parent
DAY_S = 86_400.0
SAT_ID = "tank1"
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
                   Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"))

# Site-file keys that name files, resolved against the site file's folder (as `hearth run`
# does). The demo writes its own site file elsewhere, so they must become absolute.
_PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("mqtt", "password_file"), ("mqtt", "tls", "ca_file"), ("mqtt", "tls", "cert_file"),
    ("mqtt", "tls", "key_file"), ("openadr", "cert_file"), ("openadr", "key_file"),
    ("openadr", "ca_file"), ("tariffs", "prices_file"), ("tariffs", "csv"),
    ("hmi", "auth_store_path"), ("hmi", "tls_cert_file"), ("hmi", "tls_key_file"),
)


def absolute_paths(d: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """`d` with every relative file path of `_PATH_KEYS` made absolute against `base_dir`."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for keys in _PATH_KEYS:
        node: Any = out
        for k in keys[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(k), dict):
                node = None
                break
            node[k] = dict(node[k])
            node = node[k]
        if node is None or not isinstance(node.get(keys[-1]), str):
            continue
        path = Path(node[keys[-1]])
        if not path.is_absolute():
            node[keys[-1]] = str((base_dir / path).resolve())
    return out


def _status(site: EmulatedSite) -> str:
    s = site.state
    hhmm = f"{int(s.at_s % 86400 // 3600):02d}:{int(s.at_s % 3600 // 60):02d}"
    miners = " ".join(f"{n} {w:4.0f} W" for n, w in s.miner_w.items())
    soc = f" battery {s.battery_w:+6.0f} W ({s.soc_pct:4.1f} %)" if s.soc_pct == s.soc_pct else ""
    tank = f" tank {s.tank_c:4.1f} °C" if s.tank_c == s.tank_c else ""
    return (f"{hhmm} UTC  PV {s.pv_w:5.0f} W  house {s.load_w:5.0f} W  grid {s.grid_w:+6.0f} W"
            f"{soc}{tank}  | {miners}")


# -- the day before: through the simulator into the ledger ----------------------------------


def lived_trace(cfg: SiteConfig, trace: Trace, start_s: float, hours: float) -> Trace:
    """The `hours` before `start_s` as a trace: the replayed trace's rows for those times of
    day (a one-day trace wraps round), with the prices `hearth run` will see (the site's
    tariff: the demo has no price feed) and no hashprice column (it uses `[bitcoin]`)."""
    step = trace.step_s
    n = round(hours * 3600 / step)
    times = start_s - n * step + np.arange(n, dtype=np.float64) * step
    span = len(trace.time_s) * step
    rows = (((times - trace.start_s) % span) // step).astype(np.int64)
    tariff = build_tariff(cfg.tariffs, cfg.site.timezone)
    prices = [tariff.prices_at(float(t)) for t in times]
    cols: dict[str, Any] = {
        name: np.ascontiguousarray(getattr(trace, name)[rows], dtype=np.float64)
        for name in ("pv_w", "load_w", "heat_demand_w", "outdoor_c", "dr_limit_w",
                     "hashvalue_sats_per_th_day", "btc_price")}
    return dataclasses.replace(
        trace, time_s=times, **cols,
        import_price=np.array([float(p[0]) for p in prices], dtype=np.float64),
        export_price=np.array([float(p[1]) for p in prices], dtype=np.float64),
        hashprice=np.full(n, np.nan), source=f"{trace.source} (the day before the replay)")


def live_the_day_before(cfg: SiteConfig, trace: Trace, start_s: float, hours: float,
                        ledger_url: str) -> tuple[float | None, float | None, int]:
    """Simulate the `hours` before `start_s` and write them to the ledger at `ledger_url`.
    Returns the battery SoC and tank temperature at the end (the plant starts there) and the
    number of ledger rows written."""
    from controller.ledger.sim import write_sim_ledger
    from controller.sim.runner import simulate

    result = simulate(cfg, lived_trace(cfg, trace, start_s, hours), progress=False)
    led = write_sim_ledger(result, ledger_url,
                           tariff=build_tariff(cfg.tariffs, cfg.site.timezone))
    c = result.columns
    soc = float(c["soc_pct"][-1]) if cfg.battery is not None else None
    tank = float(c["tank_c"][-1]) if cfg.tank is not None else None
    return soc, tank, led.samples


def _fresh_data_dir(out: Path) -> None:
    """A demo always starts from the same day: the last run's ledger and controller state go
    (the HMI's logins stay: no new setup code on every run)."""
    for p in out.glob("ledger.sqlite3*"):
        p.unlink()
    (out / "state.json").unlink(missing_ok=True)


# -- the tank satellite -----------------------------------------------------------------------


class DemoSatellite:
    """Mosquitto with accounts and the satellite's firmware logic reading the plant's tank:
    the tank temperature reaches `hearth run` exactly as on a real site."""

    def __init__(self, out: Path, site: EmulatedSite) -> None:
        from hil.rig.broker import RigBroker

        assert site.cfg.tank is not None
        self.out = out
        self.site = site
        self.broker = RigBroker(out / "mosquitto", site.cfg.site.id, SAT_ID)
        self.satellite: Any = None

    async def start(self) -> None:
        from hil.rig.broker import HOST
        from hil.rig.satellite import RigSatellite, board_settings

        await asyncio.to_thread(self.broker.start)
        site = self.site
        assert site.cfg.tank is not None
        user = f"sat-{SAT_ID}"
        t0 = time.monotonic()
        self.satellite = RigSatellite(
            self.out / "satellite", site_id=site.cfg.site.id, sat_id=SAT_ID, host=HOST,
            port=self.broker.port, user=user, password=self.broker.passwords[user],
            tank_c=lambda: site.state.tank_c, settings=board_settings({}, site.cfg.tank.max_c),
            clock=lambda: time.monotonic() - t0)
        self.satellite.start()
        site.tank_contactor = lambda: bool(self.satellite.contactor)

    def configure(self, d: dict[str, Any], directory: Path) -> None:
        """`[mqtt]` (the controller's account) and `[satellite]` for `hearth run`."""
        from hil.rig.broker import CONTROLLER_USER, HOST

        pw = self.broker.password_file_for(CONTROLLER_USER, directory)
        d["mqtt"] = {"host": HOST, "port": self.broker.port, "username": CONTROLLER_USER,
                     "password_file": str(pw)}
        d["satellite"] = {"id": SAT_ID}

    async def stop(self) -> None:
        if self.satellite is not None:
            await asyncio.to_thread(self.satellite.stop)
        await asyncio.to_thread(self.broker.stop)


def _setup_code(log_path: Path) -> str | None:
    m = re.search(r"One-time setup code: (\S+)", log_path.read_text(errors="replace"))
    return m.group(1) if m else None


def _run_env(start_utc_s: float | None) -> dict[str, str]:
    """`hearth run`'s environment: at the plant's pace, its wall clock is the replayed time."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if start_utc_s is not None:
        at = datetime.fromtimestamp(start_utc_s, UTC).strftime("%Y-%m-%d %H:%M:%S")
        env.update(LD_PRELOAD=str(LIBFAKETIME), FAKETIME=f"@{at}", TZ="UTC",
                   FAKETIME_DONT_FAKE_MONOTONIC="1")
    return env


def since_yesterday_h(start_s: float, timezone: str) -> float:
    """Hours from the start of the site's previous day (local midnight) to `start_s`."""
    local = datetime.fromtimestamp(start_s, ZoneInfo(timezone))
    midnight = datetime.combine(local.date() - timedelta(days=1), dtime(0), local.tzinfo)
    return (start_s - midnight.timestamp()) / 3600


async def run_demo(site_file: Path, trace: Path, out: Path, speed: float, start_h: float,
                   seconds: float | None, hmi_port: int = 8080,
                   lived_h: float | None = None) -> int:
    """`lived_h`: hours before the start lived through the simulator (None: from the start
    of the site's previous day, so yesterday is complete and today has its morning)."""
    out.mkdir(parents=True, exist_ok=True)
    _fresh_data_dir(out)
    # The plant's site: the example's, with the state the day before left it in.
    plant = EmulatedSite(site_file, trace)
    sd = absolute_paths(plant.site_dict, site_file.resolve().parent)
    start_s = plant.trace.start_s + start_h * 3600
    if lived_h is None:
        lived_h = since_yesterday_h(start_s, plant.cfg.site.timezone)
    if lived_h > 0:
        ledger_url = f"sqlite:///{(out / 'ledger.sqlite3').resolve()}"
        soc, tank_c, rows = live_the_day_before(plant.cfg, plant.trace, start_s, lived_h,
                                                ledger_url)
        print(f"the {lived_h:.0f} h before the replay, lived through the simulator: {rows} "
              f"steps in the ledger ({out / 'ledger.sqlite3'})", flush=True)
        if soc is not None:
            sd["battery"] = {**sd["battery"], "initial_soc_pct": round(soc, 2)}
        if tank_c is not None:
            sd["tank"] = {**sd["tank"], "initial_c": round(tank_c, 2)}
    plant_file = out / "plant-site.toml"
    plant_file.write_bytes(tomli_w.dumps(sd).encode())
    site = EmulatedSite(plant_file, plant.trace, speed=speed, start_s=start_h * 3600)
    await site.start()
    sat = DemoSatellite(out, site) if site.cfg.tank is not None and "mqtt" not in sd else None
    cfg_path = out / "site.toml"
    log_path = out / "hearth-run.log"
    proc: subprocess.Popen[bytes] | None = None
    rc = 0
    try:
        d = site.controller_site(out, hmi_port=hmi_port)
        if sat is not None:
            await sat.start()
            sat.configure(d, out)
        d = _controller_site_from(d)
        cfg_path.write_bytes(tomli_w.dumps(d).encode())
        same_pace = speed == 1.0 and LIBFAKETIME.exists()
        clock_words = ("its clock set to the replayed time" if same_pace else
                       f"the plant ×{speed:g} faster than its clock" if speed != 1.0 else
                       f"on this machine's clock ({LIBFAKETIME} missing: Debian's faketime)")
        print(f"emulated site {site.cfg.site.id} up (trace {trace.name}, from "
              f"{datetime.fromtimestamp(start_s, UTC):%Y-%m-%d %H:%M} UTC"
              f"{', tank satellite over MQTT' if sat is not None else ''}); "
              f"hearth run --config {cfg_path}, {clock_words} (log: {log_path})", flush=True)
        with log_path.open("wb") as log_f:
            cmd = [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run",
                   "--config", str(cfg_path)]
            if same_pace:
                # libfaketime breaks time.sleep's absolute deadline; this wrapper does not.
                cmd[1:3] = ["-m", "hil.rig.faketime_run", "controller.cli"]
            proc = subprocess.Popen(cmd, stdout=log_f, stderr=subprocess.STDOUT, cwd=ROOT,
                                    env=_run_env(start_s if same_pace else None))
        rc = await _watch(site, proc, log_path, hmi_port, seconds)
    finally:
        print("\nstopping: hearth run gets SIGTERM (miners to their shutdown state)...")
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = 1
        if proc is not None:
            print(f"hearth run exited with {proc.returncode}; miners now: "
                  + ", ".join(f"{n} " + ("paused" if m.paused else
                                         f"running at {m.model.power_w:.0f} W "
                                         "(no pause in its API)")
                              for n, m in site.miners.items()))
        if sat is not None:
            await sat.stop()
        await site.stop()
    return rc if proc is not None and proc.returncode == 0 else 1


def _controller_site_from(d: dict[str, Any]) -> dict[str, Any]:
    if "satellite" not in d and "tank" in d:
        # The tank's temperature reaches the controller through the satellite board; a
        # site with its own [mqtt] broker cannot reach the demo's satellite, so the demo
        # runs the miners as room heaters.
        d.pop("tank")
        d["miners"] = [{**m, "heats_tank": False} for m in d["miners"]]
    return d


async def _watch(site: EmulatedSite, proc: subprocess.Popen[bytes], log_path: Path,
                 hmi_port: int, seconds: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tty = sys.stdout.isatty()
    deadline = None if seconds is None else loop.time() + seconds
    told_url = False
    next_status = loop.time()
    while not stop.is_set():
        if not told_url and "HMI on http" in log_path.read_text(errors="replace"):
            code = _setup_code(log_path)
            print(f"\nwall tablet: http://127.0.0.1:{hmi_port}/   installer: "
                  f"http://127.0.0.1:{hmi_port}/installer"
                  + (f" (one-time setup code {code})" if code else
                     " (installer password set in an earlier run: "
                     f"rm {log_path.parent}/hmi-auth.json for a new code)"),
                  flush=True)
            told_url = True
        if proc.poll() is not None:
            print(f"\nhearth run exited with {proc.returncode}: see {log_path}")
            return 1
        if loop.time() >= next_status:
            line = _status(site)
            print(("\r" + line + "\x1b[K") if tty else line, end="" if tty else "\n",
                  flush=True)
            next_status = loop.time() + (2.0 if tty else 10.0)
        if deadline is not None and loop.time() >= deadline:
            break
        # Until the HMI is up, look for it every half second: on the 10 s status cadence a
        # quick start could be stopped before its URL and setup code were ever printed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(),
                                   0.5 if not told_url else next_status - loop.time())
    return 0


def register(sub: Any) -> None:
    """`hearth demo` (an entry point of the `hearth.commands` group)."""
    demo = sub.add_parser("demo", help="an emulated site and hearth run against it (make demo)")
    add_arguments(demo)
    demo.set_defaults(func=run)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--site", type=Path, default=ROOT / "hil/sites/house-10kwp.toml")
    ap.add_argument("--trace", type=Path, default=ROOT / "hil/traces/house-spring-day.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "out/demo")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="plant time per real second (1: hearth run's clock is the plant's)")
    ap.add_argument("--start-hour", type=float, default=10.0, help="hour of the trace day")
    ap.add_argument("--seconds", type=float, help="stop by itself after this long")
    ap.add_argument("--hmi-port", type=int, default=8080, help="where the HMI listens")
    ap.add_argument("--lived-hours", type=float, default=None,
                    help="hours before the start lived through the simulator (0: none; "
                         "default: from the start of the site's previous day)")


def run(a: argparse.Namespace) -> int:
    return asyncio.run(run_demo(a.site, a.trace, a.out, a.speed, a.start_hour, a.seconds,
                                a.hmi_port, a.lived_hours))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hearth demo", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
