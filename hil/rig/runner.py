"""Run one scenario: the emulated site, the unmodified `hearth run` process, the faults.

The plant and its emulators run in this process; `hearth run` is a separate process that
only sees them over Modbus TCP and the miners' HTTP APIs. Faults are switched on and off
at the scenario's real times. Every plant step becomes a timeline row (real time since
start, plant values, each miner's power, run state and target, the faults active), which
`checks.py` judges afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tomli_w

from controller.config import parse_site
from controller.trace.reader import Trace, read_trace
from hil.rig.scenario import ROOT, Fault, Scenario, site_dict_for
from hil.site import GX_UNIT, EmulatedSite, SiteState

log = logging.getLogger(__name__)


@dataclass
class Row:
    t_s: float
    state: SiteState
    paused: dict[str, bool]
    target_w: dict[str, float]
    faults: tuple[str, ...]
    controller_up: bool
    writes: dict[str, int] = field(default_factory=dict)  # accepted API writes so far


@dataclass
class RunRecord:
    scenario: Scenario
    site: dict[str, Any]
    controller_site: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    fault_times: list[tuple[Fault, float, float]] = field(default_factory=list)  # real on/off
    exit_code: int | None = None
    restarts: int = 0
    out: Path = Path()
    ledger_url: str | None = None


def _trace(s: Scenario, site_path: Path) -> Trace:
    cfg = parse_site(site_dict_for(s), str(site_path))
    if s.trace.file is not None:
        return read_trace(s.trace.file, cfg)
    n = int(s.duration_s * max(s.speed, 1.0) / 60) + 120
    t0 = 1_745_000_000.0

    def col(v: float) -> npt.NDArray[np.float64]:
        return np.full(n, v, dtype=np.float64)

    return Trace(time_s=t0 + np.arange(n, dtype=np.float64) * 60.0, pv_w=col(s.trace.pv_w),
                 load_w=col(s.trace.load_w), heat_demand_w=col(0.0), outdoor_c=col(np.nan),
                 import_price=col(0.3), export_price=col(0.05), hashprice=col(np.nan),
                 dr_limit_w=col(np.nan), step_s=60.0, source=f"scenario {s.name} (constant)")


class Rig:
    """One scenario run; `controller` is "real" or a break from hil.rig.broken."""

    def __init__(self, s: Scenario, out: Path, controller: str = "real") -> None:
        self.s, self.out, self.controller = s, out, controller
        self.proc: subprocess.Popen[bytes] | None = None
        self.active: set[str] = set()
        self._t0 = 0.0
        self._log_f: Any = None

    def _cmd(self, cfg_path: Path) -> list[str]:
        args = ["--log-level", "INFO", "run", "--config", str(cfg_path)]
        if self.controller == "real":
            return [sys.executable, "-m", "controller.cli", *args]
        return [sys.executable, "-m", "hil.rig.broken", self.controller, "--", *args]

    def _start_controller(self, cfg_path: Path) -> None:
        self.proc = subprocess.Popen(self._cmd(cfg_path), stdout=self._log_f,
                                     stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def _set(self, site: EmulatedSite, f: Fault, on: bool) -> None:
        faults = site.modbus.device(GX_UNIT).faults
        if f.kind == "meter_silent":
            faults.no_answer = on
        elif f.kind == "modbus_garbage":
            faults.garbage = on
        elif f.kind == "modbus_exception":
            faults.exception_code = 4 if on else None
        elif f.kind == "meter_frozen":
            faults.frozen = on
        elif f.kind == "miner_hang":
            assert f.miner is not None
            site.miners[f.miner].hang = on
        elif f.kind == "pv_step":
            site.pv_offset_w = f.value if on else 0.0
        (self.active.add if on else self.active.discard)(f.kind)
        log.warning("HIL fault %s %s at %.1f s", f.kind, "ON" if on else "cleared",
                    time.monotonic() - self._t0)

    async def run(self) -> RunRecord:
        s = self.s
        self.out.mkdir(parents=True, exist_ok=True)
        plant_site = self.out / "plant-site.toml"
        sd = site_dict_for(s)
        plant_site.write_bytes(tomli_w.dumps(sd).encode())
        site = EmulatedSite(plant_site, _trace(s, plant_site), speed=s.speed,
                            start_s=s.trace.start_hour * 3600 if s.trace.file else 0.0,
                            step_s=0.2)
        await site.start()
        data_dir = self.out / "data"
        data_dir.mkdir(exist_ok=True)
        d = site.controller_site(data_dir, tick_s=s.tick_s, start_delay_max_s=0.0)
        d["devices"][0]["period_s"] = 0.25
        cfg_path = self.out / "site.toml"
        cfg_path.write_bytes(tomli_w.dumps(d).encode())
        rec = RunRecord(s, sd, d, out=self.out)
        rec.ledger_url = parse_site(d, str(cfg_path)).ledger.url
        self._t0 = time.monotonic()

        def on_step(st: SiteState) -> None:
            rec.rows.append(Row(
                time.monotonic() - self._t0, st,
                {n: m.paused for n, m in site.miners.items()},
                {n: m.target_w for n, m in site.miners.items()},
                tuple(sorted(self.active)),
                self.proc is not None and self.proc.poll() is None,
                {n: len(m.writes) for n, m in site.miners.items()}))

        site.on_step.append(on_step)
        self._log_f = (self.out / "hearth-run.log").open("wb")
        self._start_controller(cfg_path)
        try:
            events: list[tuple[float, Fault, bool]] = []
            for f in s.faults:
                events += [(f.at_s, f, True), (f.end_s, f, False)]
            events.sort(key=lambda e: e[0])
            on_at: dict[int, float] = {}
            for at, f, on in events:
                await asyncio.sleep(max(0.0, at - (time.monotonic() - self._t0)))
                self._check_alive()
                now = time.monotonic() - self._t0
                if f.kind == "kill_restart":
                    assert self.proc is not None
                    if on:
                        self.proc.send_signal(signal.SIGKILL)
                        await asyncio.to_thread(self.proc.wait, 30)
                        log.warning("HIL fault: hearth run SIGKILLed at %.1f s", now)
                        self.active.add(f.kind)
                    else:
                        self._start_controller(cfg_path)
                        rec.restarts += 1
                        self.active.discard(f.kind)
                        log.warning("HIL: hearth run restarted at %.1f s", now)
                else:
                    self._set(site, f, on)
                if on:
                    on_at[id(f)] = now
                else:
                    rec.fault_times.append((f, on_at[id(f)], now))
            await asyncio.sleep(max(0.0, s.duration_s - (time.monotonic() - self._t0)))
            self._check_alive()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rec.exit_code = await asyncio.to_thread(self.proc.wait, 30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rec.exit_code = -9
            elif self.proc is not None:
                rec.exit_code = self.proc.returncode
            site.on_step.remove(on_step)
            await site.stop()
            self._log_f.close()
        return rec

    def _check_alive(self) -> None:
        if (self.proc is not None and self.proc.poll() is not None
                and "kill_restart" not in self.active):
            raise RuntimeError(f"hearth run exited with {self.proc.returncode} mid-scenario "
                               f"(see {self.out / 'hearth-run.log'})")


def write_timeline(rec: RunRecord, path: Path) -> None:
    """The recorded timeline as CSV: one row per plant step."""
    names = sorted(rec.rows[0].state.miner_w) if rec.rows else []
    cols = ["t_s", "plant_s", "pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "tank_c"]
    for n in names:
        cols += [f"{n}_w", f"{n}_paused", f"{n}_target_w"]
    cols += ["controller_up", "faults"]
    with path.open("w") as f:
        f.write(",".join(cols) + "\n")
        for r in rec.rows:
            st = r.state
            vals = [f"{r.t_s:.3f}", f"{st.at_s:.1f}", f"{st.pv_w:.1f}", f"{st.load_w:.1f}",
                    f"{st.grid_w:.1f}", f"{st.battery_w:.1f}", f"{st.soc_pct:.2f}",
                    f"{st.tank_c:.2f}"]
            for n in names:
                vals += [f"{st.miner_w.get(n, 0.0):.1f}", str(int(r.paused[n])),
                         f"{r.target_w[n]:.1f}"]
            vals += [str(int(r.controller_up)), "+".join(r.faults)]
            f.write(",".join(vals) + "\n")


async def run_scenario(s: Scenario, out: Path, controller: str = "real") -> RunRecord:
    rec = await Rig(s, out, controller).run()
    write_timeline(rec, out / "timeline.csv")
    return rec
