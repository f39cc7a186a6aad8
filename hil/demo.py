"""`hearth demo`: an emulated site and the real `hearth run` against it, on one machine.

The emulated site (plant model + Modbus GX emulator + miner API emulators) runs in this
process; `hearth run` runs as a separate process against it, exactly as it would on a
Raspberry Pi against real hardware. A status line shows what the plant does; Ctrl-C (or
`--seconds`) stops `hearth run` with SIGTERM (miners to their shutdown state) and then the
emulators.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from hil.site import EmulatedSite

ROOT = Path(__file__).resolve().parent.parent


def _status(site: EmulatedSite) -> str:
    s = site.state
    hhmm = f"{int(s.at_s % 86400 // 3600):02d}:{int(s.at_s % 3600 // 60):02d}"
    miners = " ".join(f"{n} {w:4.0f} W" for n, w in s.miner_w.items())
    soc = f" battery {s.battery_w:+6.0f} W ({s.soc_pct:4.1f} %)" if s.soc_pct == s.soc_pct else ""
    tank = f" tank {s.tank_c:4.1f} °C" if s.tank_c == s.tank_c else ""
    return (f"{hhmm} UTC  PV {s.pv_w:5.0f} W  house {s.load_w:5.0f} W  grid {s.grid_w:+6.0f} W"
            f"{soc}{tank}  | {miners}")


def _controller_site(site: EmulatedSite, out: Path, hmi_port: int) -> dict[str, Any]:
    d = site.controller_site(out, hmi_port=hmi_port)
    if "satellite" not in d and "tank" in d:
        # The tank's temperature reaches the controller through the satellite board; a
        # site file without one cannot let miners heat the tank (they would stop on a
        # stale tank reading), so the demo runs the miners as room heaters.
        d.pop("tank")
        d["miners"] = [{**m, "heats_tank": False} for m in d["miners"]]
    return d


def _setup_code(log_path: Path) -> str | None:
    m = re.search(r"One-time setup code: (\S+)", log_path.read_text(errors="replace"))
    return m.group(1) if m else None


async def run_demo(site_file: Path, trace: Path, out: Path, speed: float, start_h: float,
                   seconds: float | None, hmi_port: int = 8080) -> int:
    out.mkdir(parents=True, exist_ok=True)
    site = EmulatedSite(site_file, trace, speed=speed, start_s=start_h * 3600)
    await site.start()
    cfg_path = out / "site.toml"
    cfg_path.write_bytes(tomli_w.dumps(_controller_site(site, out, hmi_port)).encode())
    log_path = out / "hearth-run.log"
    print(f"emulated site {site.cfg.site.id} up (trace {trace.name}, ×{speed:g} speed); "
          f"hearth run --config {cfg_path} (log: {log_path})", flush=True)
    with log_path.open("wb") as log_f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run",
             "--config", str(cfg_path)], stdout=log_f, stderr=subprocess.STDOUT, cwd=ROOT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tty = sys.stdout.isatty()
    deadline = None if seconds is None else loop.time() + seconds
    rc = 0
    told_url = False
    try:
        while not stop.is_set():
            if not told_url and "HMI on http" in log_path.read_text(errors="replace"):
                code = _setup_code(log_path)
                print(f"\nwall tablet: http://127.0.0.1:{hmi_port}/   installer: "
                      f"http://127.0.0.1:{hmi_port}/installer"
                      + (f" (one-time setup code {code})" if code else ""), flush=True)
                told_url = True
            if proc.poll() is not None:
                print(f"\nhearth run exited with {proc.returncode}: see {log_path}")
                rc = 1
                break
            line = _status(site)
            print(("\r" + line + "\x1b[K") if tty else line, end="" if tty else "\n",
                  flush=True)
            if deadline is not None and loop.time() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0 if tty else 10.0)
    finally:
        print("\nstopping: hearth run gets SIGTERM (miners to their shutdown state)...")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = 1
        print(f"hearth run exited with {proc.returncode}; miners now: "
              + ", ".join(f"{n} " + ("paused" if m.paused else
                                     f"running at {m.model.power_w:.0f} W (no pause in its API)")
                          for n, m in site.miners.items()))
        await site.stop()
    return rc if proc.returncode == 0 else 1


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--site", type=Path, default=ROOT / "hil/sites/house-10kwp.toml")
    ap.add_argument("--trace", type=Path, default=ROOT / "hil/traces/house-spring-day.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "out/demo")
    ap.add_argument("--speed", type=float, default=1.0, help="plant time per real second")
    ap.add_argument("--start-hour", type=float, default=10.0, help="hour of the trace day")
    ap.add_argument("--seconds", type=float, help="stop by itself after this long")
    ap.add_argument("--hmi-port", type=int, default=8080, help="where the HMI listens")


def run(a: argparse.Namespace) -> int:
    return asyncio.run(run_demo(a.site, a.trace, a.out, a.speed, a.start_hour, a.seconds,
                                a.hmi_port))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hearth demo", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
