"""RSS, CPU and tick times of `hearth run` against the emulated site at a 1 s tick.

The emulated example house (Modbus GX + Braiins OS + two AxeOS emulators over loopback,
plant replaying the real spring day from 10:00) runs in this process; `hearth run` runs as
a separate process, as on the Pi. Figures are read from /proc over the run and compared
with an in-run baseline: a Python process that only imports Hearth and sleeps.
Targets (Raspberry Pi class): RSS <= 120 MB, CPU <= 3 % of one core.

Run: .venv/bin/python bench/service_bench.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hil.site import EmulatedSite  # noqa: E402

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime


async def _measure(pid: int, seconds: float) -> tuple[float, float, float]:
    """(peak RSS MB, mean RSS MB over the second half, CPU % of one core) after warm-up."""
    await asyncio.sleep(min(15.0, seconds / 4))
    cpu0, t0 = _cpu_s(pid), asyncio.get_running_loop().time()
    rss = []
    while asyncio.get_running_loop().time() - t0 < seconds:
        rss.append(_rss_mb(pid))
        await asyncio.sleep(1.0)
    cpu = (_cpu_s(pid) - cpu0) / (asyncio.get_running_loop().time() - t0) * 100
    half = rss[len(rss) // 2:]
    return max(rss), sum(half) / len(half), cpu


async def main(seconds: float) -> int:
    out = ROOT / "out" / "bench-service"
    out.mkdir(parents=True, exist_ok=True)
    site = EmulatedSite(ROOT / "hil/sites/house-10kwp.toml",
                        ROOT / "hil/traces/house-spring-day.csv", start_s=10 * 3600)
    await site.start()
    d = site.controller_site(out, tick_s=1.0, start_delay_max_s=0.0)
    d.pop("tank")
    d["miners"] = [{**m, "heats_tank": False} for m in d["miners"]]
    cfg = out / "site.toml"
    cfg.write_bytes(tomli_w.dumps(d).encode())
    log = out / "run.log"
    with log.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "--log-level", "INFO",
                                 "run", "--config", str(cfg)], stdout=f,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    base = subprocess.Popen([sys.executable, "-c",
                             "import controller.runtime.assemble, hil.site, time; "
                             "time.sleep(1e6)"], cwd=ROOT)
    try:
        (peak, mean, cpu), (b_peak, _, b_cpu) = await asyncio.gather(
            _measure(proc.pid, seconds), _measure(base.pid, seconds))
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
        base.kill()
        await site.stop()
    m = re.search(r"tick time ms: (.*)", log.read_text())
    miners = ", ".join(f"{k} {v:.0f} W" for k, v in site.state.miner_w.items())
    print(f"hearth run against the emulated house, 1 s tick, {seconds:.0f} s measured "
          f"after warm-up (miners: {miners})")
    print(f"  RSS   peak {peak:6.1f} MB, mean {mean:6.1f} MB   (target <= 120 MB; "
          f"baseline: Python + Hearth imported, idle: {b_peak:.1f} MB)")
    print(f"  CPU   {cpu:5.2f} % of one core                 (target <= 3 %; "
          f"baseline idle: {b_cpu:.2f} %)")
    print(f"  ticks {m.group(1) if m else 'no tick statistics in the log'}")
    print(f"  exit  {proc.returncode} after SIGTERM")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120.0)
    sys.exit(asyncio.run(main(ap.parse_args().seconds)))
