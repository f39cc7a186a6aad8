"""Run one scenario: the emulated site, the unmodified `hearth run` process, the faults.

The plant and its emulators run in this process; `hearth run` is a separate process that
only sees them over Modbus TCP and the miners' HTTP APIs. Faults are switched on and off
at the scenario's real times. Every plant step becomes a timeline row (real time since
start, plant values, each miner's power, run state and target, the faults active), which
`checks.py` judges afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tomli_w

from controller.config import parse_site
from controller.config.devices import ROLE_QUANTITIES
from controller.control.types import Measurements, MinerCommand, Reading
from controller.trace.reader import Trace, read_trace
from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator, PtyPair
from hil.modbus.feed import values_from_measurements
from hil.rig.mqtt_rig import MQ_FAULTS, MqttRecord, MqttRig
from hil.rig.scenario import ROOT, Fault, Scenario, site_dict_for
from hil.site import GX_UNIT, EmulatedSite, SiteState

# libfaketime (Debian package `faketime`) for the wall-clock jump: the wall clock moves by
# the offset in a file re-read on every call; CLOCK_MONOTONIC is left alone, as on a Pi
# whose NTP sync steps the clock after a boot without RTC.
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
                   Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"))
RTU_METER_UNIT = 1

log = logging.getLogger(__name__)
# What `hearth run` logs at its first tick on fresh measurements (controller/runtime/service.py).
READY_LINE = "fresh measurements: miners may start"
READY_TIMEOUT_S = 60.0


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
    mqtt: MqttRecord | None = None  # broker, satellite, DR: what the MQTT side saw
    # When `hearth run` first ticked on fresh measurements (s since the start); the
    # scenario's fault times count from then.
    ready_s: float | None = None


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
        self.rtu: ModbusEmulator | None = None  # meter_transport = "rtu": SDM630 on a pty
        self.pty: PtyPair | None = None
        self.clock_file = out / "faketime-offset"
        self.clock_offset_s = 0.0
        self.mq: MqttRig | None = None  # scenario mqtt = true: broker, satellite, DR

    def _cmd(self, cfg_path: Path) -> list[str]:
        args = ["--log-level", "INFO", "run", "--config", str(cfg_path)]
        # Under libfaketime (clock_jump) through hil.rig.faketime_run: see its docstring.
        pre = (["-m", "hil.rig.faketime_run"] if any(f.kind == "clock_jump"
                                                      for f in self.s.faults) else ["-m"])
        if self.controller == "real":
            return [sys.executable, *pre, "controller.cli", *args]
        return [sys.executable, *pre, "hil.rig.broken", self.controller, "--", *args]

    def _start_controller(self, cfg_path: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if any(f.kind == "clock_jump" for f in self.s.faults):
            env.update(faketime_env(self.clock_file))
        self.proc = subprocess.Popen(self._cmd(cfg_path), stdout=self._log_f,
                                     stderr=subprocess.STDOUT, cwd=ROOT, env=env)

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
        elif f.kind in ("rtu_noise", "rtu_silent"):
            assert self.rtu is not None
            rtu = self.rtu.device(RTU_METER_UNIT).faults
            if f.kind == "rtu_noise":
                rtu.garbage = on
            else:
                rtu.no_answer = on
        elif f.kind == "miner_ignores_target":
            assert f.miner is not None
            em = site.miners[f.miner]
            em.ignore_commands = on
            if not on:  # the firmware recovers and applies what it was last told
                em.model.apply(MinerCommand(f.miner, not em.paused, em.target_w))
        elif f.kind == "clock_jump" and on:  # a step, not undone when the window ends
            self.clock_offset_s += f.value
            self.clock_file.write_text(f"{self.clock_offset_s:+.0f}\n")
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
        if s.meter_transport == "rtu":
            d["devices"].append(await self._start_rtu_meter(site))
            d["devices"][0]["provides"] = [q for q in ROLE_QUANTITIES["hybrid"]
                                           if not q.startswith("grid_")]
        if s.mqtt:
            self.mq = MqttRig(s, self.out, site.cfg.site.id,
                              lambda: time.monotonic() - self._t0 if self._t0 else 0.0,
                              lambda: site.state.tank_c,
                              site.cfg.tank.max_c if site.cfg.tank else None)
            await self.mq.start()
            self.mq.configure(d, self.out)
            site.tank_contactor = self.mq.contactor
        self.clock_file.write_text("+0\n")
        if s.prices:
            d["tariffs"] = {**d.get("tariffs", {}),
                            "prices_file": str(write_prices(s, self.out / "prices.csv"))}
        cfg_path = self.out / "site.toml"
        cfg_path.write_bytes(tomli_w.dumps(d).encode())
        rec = RunRecord(s, sd, d, out=self.out)
        rec.ledger_url = parse_site(d, str(cfg_path)).ledger.url
        rec.mqtt = self.mq.rec if self.mq is not None else None
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
            async def apply(f: Fault, on: bool, now: float) -> None:
                if f.kind in MQ_FAULTS:
                    assert self.mq is not None  # the scenario parser requires mqtt
                    await self.mq.fault(f, on, self.proc)
                    (self.active.add if on else self.active.discard)(f.kind)
                    log.warning("HIL fault %s %s at %.1f s", f.kind, "ON" if on else "cleared",
                                now)
                else:
                    self._set(site, f, on)

            await self.play_faults(cfg_path, rec, apply)
        finally:
            if self.mq is not None:
                self.mq.thaw()  # a frozen (SIGSTOPped) hearth run cannot take SIGTERM
            await self.stop_controller(rec)
            site.on_step.remove(on_step)
            await site.stop()
            if self.mq is not None:
                await self.mq.stop()
            if self.rtu is not None:
                await self.rtu.stop()
            if self.pty is not None:
                self.pty.stop()
            self._log_f.close()
        return rec

    async def _start_rtu_meter(self, site: EmulatedSite) -> dict[str, Any]:
        """The grid meter as an Eastron SDM630 on RS-485: an RTU server on one end of a
        socat pty pair, fed from the plant every step; returns the controller's device."""
        self.pty = PtyPair().start()
        self.rtu = ModbusEmulator([EmulatedDevice(RTU_METER_UNIT,
                                                  DeviceImage("eastron-sdm630"))], name="sdm630")
        phases = site.cfg.site.phases

        def feed(st: SiteState) -> None:
            assert self.rtu is not None
            m = Measurements(grid_power_w=Reading(st.grid_w, st.at_s))
            self.rtu.set_values(values_from_measurements(m, phases=phases))

        feed(site.state)
        site.on_step.append(feed)
        await self.rtu.start_rtu(self.pty.device_end, baudrate=9600, parity="N")
        return {"name": "grid-meter", "role": "grid_meter", "map": "eastron-sdm630",
                "transport": "rtu", "serial_port": self.pty.host_end, "baudrate": 9600,
                "parity": "N", "unit_id": RTU_METER_UNIT, "period_s": 0.25,
                "timeout_s": 0.3, "retries": 0, "provides": ["grid_power_w"]}

    async def stop_controller(self, rec: RunRecord) -> None:
        """SIGTERM `hearth run` as systemd would and wait for its shutdown (miners to their
        shutdown state, ledger flushed); SIGKILL after 30 s, exit code -9 in the report.
        Under libfaketime (the clock_jump fault), `hil.rig.faketime_run` first prints every
        thread's and asyncio task's stack on SIGUSR1: the log says where a shutdown hung."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            rec.exit_code = self.proc.returncode
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rec.exit_code = await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            log.error("hearth run did not stop within 30 s of SIGTERM: killing it")
            if any(f.kind == "clock_jump" for f in rec.scenario.faults):
                self.proc.send_signal(signal.SIGUSR1)
                await asyncio.sleep(1.0)
            self.proc.kill()
            rec.exit_code = -9

    async def play_faults(self, cfg_path: Path, rec: RunRecord,
                          apply: Callable[[Fault, bool, float], Awaitable[None]]) -> None:
        """Switch each fault on and off at its real time since `_t0` (SIGKILL and restart
        of `hearth run` here, every other kind by `apply`), record when each was on, then
        wait out the scenario. The emulated rig and the real-hardware runner share it."""
        events = sorted([(t, f, on) for f in self.s.faults
                         for t, on in ((f.at_s, True), (f.end_s, False))],
                        key=lambda e: e[0])
        ready = rec.ready_s = await self.wait_ready() if events else None
        shift = ready or 0.0
        on_at: dict[int, float] = {}
        for at, f, on in events:
            await asyncio.sleep(max(0.0, at + shift - (time.monotonic() - self._t0)))
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
                await apply(f, on, now)
            if on:
                on_at[id(f)] = now
            else:
                rec.fault_times.append((f, on_at[id(f)], now))
        await asyncio.sleep(max(0.0, self.s.duration_s + shift - (time.monotonic() - self._t0)))
        self._check_alive()

    async def wait_ready(self) -> float:
        """Seconds from the start until `hearth run` ticks on fresh measurements (its log
        says `READY_LINE`), at most READY_TIMEOUT_S. A scenario's faults count from then:
        on a loaded machine the process takes 2-20 s to start, and a fault played before
        the controller runs tests nothing (a rogue miner never started, a clock step the
        process never saw). Start-up after a `kill_restart` is still judged."""
        log_path = self.out / "hearth-run.log"
        while time.monotonic() - self._t0 < READY_TIMEOUT_S:
            if self.proc is not None and self.proc.poll() is not None:
                break  # exited: the checks say why
            with contextlib.suppress(OSError):
                if READY_LINE in log_path.read_text(errors="replace"):
                    break
            await asyncio.sleep(0.1)
        else:
            log.warning("hearth run not ready after %.0f s: faults played from then",
                        READY_TIMEOUT_S)
        ready = time.monotonic() - self._t0
        log.warning("HIL: hearth run ready at %.1f s: faults count from then", ready)
        return ready

    def _check_alive(self) -> None:
        if (self.proc is not None and self.proc.poll() is not None
                and "kill_restart" not in self.active):
            raise RuntimeError(f"hearth run exited with {self.proc.returncode} mid-scenario "
                               f"(see {self.out / 'hearth-run.log'})")


def write_prices(s: Scenario, path: Path, wall0_s: float | None = None) -> Path:
    """The scenario's price steps as `[tariffs] prices_file`, at the wall-clock times the
    run will reach them (the run starts now); the first step also covers the hour before,
    the last one the hour after."""
    wall0 = time.time() if wall0_s is None else wall0_s
    steps = list(s.prices)
    times = [wall0 - 3600.0 if i == 0 else wall0 + p.at_s for i, p in enumerate(steps)]
    times.append(wall0 + s.duration_s + 3600.0)
    steps.append(steps[-1])
    lines = ["time,import_price,export_price"]
    for t, p in zip(times, steps, strict=True):
        lines.append(f"{datetime.fromtimestamp(t, UTC).isoformat()},{p.import_price!r},"
                     f"{p.export_price!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def faketime_env(offset_file: Path) -> dict[str, str]:
    """Environment that makes a process's wall clock follow `offset_file` ("+3600")."""
    if not LIBFAKETIME.is_file():
        raise RuntimeError(f"{LIBFAKETIME} missing: the clock_jump fault needs libfaketime "
                           "(Debian package 'faketime', `make system-deps`)")
    # Only the wall clock: faking CLOCK_MONOTONIC too would be a different (and unreal)
    # fault. libfaketime 0.9.10 then mis-handles absolute-deadline sleeps on
    # CLOCK_MONOTONIC (Python's time.sleep): hearth run only sleeps through asyncio.
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


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
