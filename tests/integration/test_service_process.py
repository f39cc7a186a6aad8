"""`hearth run` as a separate process against the emulated site, over real sockets.

The site: the example house without battery and tank, its S9 (Braiins OS API) and two
Bitaxes (AxeOS API) tuned to start and settle within seconds, the plant replaying a
constant PV surplus. Checks the service issue's promises: a PV step is followed within the
settle time, a silent meter ramps the miners to zero within the stale timeout and they come
back after it returns, SIGTERM leaves every miner that can pause paused and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simkit
import tomli_w

from hil.site import EmulatedSite

STALE_S = 3.0
RAMP_W_PER_S = 100.0
MARGIN_W = 50.0


def _site_file(tmp: Path) -> Path:
    d = simkit.site_dict()
    del d["battery"], d["tank"]
    for m in d["miners"]:
        m.update(heats_tank=False, min_on_s=5, min_off_s=5, restart_s=2, stop_s=0.5)
    d["miners"][0]["ramp_w_per_s"] = RAMP_W_PER_S
    d["control"].update(on_delay_s=2, off_delay_s=2, stale_timeout_s=STALE_S,
                        export_margin_w=MARGIN_W)
    p = tmp / "house.toml"
    p.write_bytes(tomli_w.dumps(d).encode())
    return p


async def _until(cond: Callable[[], bool], timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.2)
    return time.monotonic() - t0


@pytest.mark.slow(35)
async def test_hearth_run_against_the_emulated_site(tmp_path: Path) -> None:
    out_dir = tmp_path
    n = 4 * 3600
    trace = simkit.trace(np.full(n, 1300.0), 300.0, step_s=60.0, start_s=1_745_000_000.0)
    site = EmulatedSite(_site_file(out_dir), trace, speed=1.0, step_s=0.2)
    await site.start()
    cfg_path = out_dir / "site.toml"
    d: dict[str, Any] = site.controller_site(out_dir, tick_s=0.5, start_delay_max_s=0.0)
    d["devices"][0]["period_s"] = 0.25
    cfg_path.write_bytes(tomli_w.dumps(d).encode())
    log = (out_dir / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run", "--config",
         str(cfg_path), "--no-ledger"],
        stdout=log, stderr=subprocess.STDOUT, cwd=simkit.ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        def miners_w() -> float:
            return sum(site.state.miner_w.values())

        # Surplus 1000 W: the Bitaxes (44 W) and the S9 take it down to the export margin.
        await _until(lambda: abs(site.state.grid_w + MARGIN_W) < 40, 60,
                     "miners eat the surplus")
        before = miners_w()
        # PV step +300 W: the S9's ramp (100 W/s) plus a few ticks is the settle time.
        site.pv_offset_w = 300.0
        settle = await _until(lambda: abs(miners_w() - (before + 300)) < 40, 15,
                              "follow a +300 W PV step")
        assert settle < 300 / RAMP_W_PER_S + 5
        # The meter goes silent: within the stale timeout the miners ramp to zero (the S9
        # pauses; the Bitaxes, which cannot pause, are held at their minimum).
        site.modbus.device(100).faults.no_answer = True
        t_zero = await _until(lambda: site.state.miner_w["s9"] == 0.0, STALE_S + 10,
                              "S9 to zero without a meter")
        assert t_zero < STALE_S + 5
        # The meter returns: normal control resumes.
        site.modbus.device(100).faults.clear()
        await _until(lambda: site.state.miner_w["s9"] > 600, 30, "S9 back after the meter")
        # SIGTERM: every miner that can pause is paused, the process exits 0.
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 30)
        assert rc == 0
        assert site.miners["s9"].paused
        await _until(lambda: site.state.miner_w["s9"] == 0.0, 5, "S9 paused and at 0 W")
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        await site.stop()
        print((out_dir / "run.log").read_text()[-3000:])
    state = tomllib.loads(cfg_path.read_text())
    assert state["service"]["data_dir"] == str(out_dir)
    assert (out_dir / "state.json").exists()
