"""The scenarios against real hardware: `HIL_TARGET=site.toml python -m hil.rig run ...`.

No emulator is started. `hearth run` (unmodified) runs against the target site file (a
copy with this run's data dir and the scenario's `[patch.control]` / `[patch.ledger]`),
the faults that can be done to real hardware are injected (SIGKILL + restart, wall-clock
step), and a recorder polls the real meters and miners **read-only** with the
controller's own Modbus and miner drivers to build the same timeline the emulated rig
records; the same checks judge it.

What cannot be done to real hardware (a silent meter, garbage frames, a hung or rogue
miner API, a PV step, the MQTT-side faults) needs the emulator: such a scenario is
reported *skipped* with that reason, never run without its fault and never passed.

The recorder polls Modbus TCP devices of the target directly (a second TCP client; a
device that takes only one needs the Hearth Modbus proxy in front). An RS-485 bus takes one
master, and `hearth run` is it: RTU devices are left out, and `HIL_RECORD=devices.toml`
(`[[devices]]` tables like a site file's) gives the recorder its own read path, e.g. a
second adapter on a second meter, or the inverter's TCP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import tomli_w

from controller.config import parse_site
from controller.config.devices import DeviceConfig
from controller.devices.acquisition import Acquisition
from controller.errors import InputError, Problem
from controller.miners.base import MinerDriver, State
from controller.miners.factory import build_drivers
from hil.rig.runner import Rig, Row, RunRecord, write_timeline
from hil.rig.scenario import Fault, Scenario
from hil.site import SiteState

log = logging.getLogger(__name__)

# Faults the rig can inject on a real site; everything else needs the emulated plant.
TARGET_FAULTS = ("kill_restart", "clock_jump")
PATCHABLE = ("control", "ledger")  # scenario patches that tune the controller, not a plant
RECORD_PERIOD_S = 0.25


def needs_emulator(s: Scenario) -> str | None:
    """Why `s` cannot run on real hardware, or None."""
    kinds = sorted({f.kind for f in s.faults if f.kind not in TARGET_FAULTS})
    if kinds:
        return f"needs emulator: fault {', '.join(kinds)} cannot be injected on real hardware"
    if s.meter_transport == "rtu":
        return "needs emulator: meter_transport is the rig's pty pair"
    if getattr(s, "satellite", None) is not None:
        return "needs emulator: the satellite board is emulated"
    return None


def load_target(path: Path) -> dict[str, Any]:
    """The target site file, validated (InputError naming the field)."""
    try:
        with path.open("rb") as f:
            d: dict[str, Any] = tomllib.load(f)
    except OSError as e:
        raise InputError(f"HIL_TARGET={path}", [Problem("", f"cannot read: {e.strerror}")]
                         ) from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"HIL_TARGET={path}", [Problem("", f"not valid TOML: {e}")]) from e
    parse_site(d, str(path))
    return d


def recorder_devices(cfg_devices: list[DeviceConfig], extra: Path | None
                     ) -> tuple[list[DeviceConfig], list[str]]:
    """TCP devices of the target plus HIL_RECORD's; notes on what is left out."""
    notes = [f"device {d.name} is on RS-485 ({d.serial_port}): one master per bus, not "
             "polled by the recorder (HIL_RECORD gives it another read path)"
             for d in cfg_devices if d.transport == "rtu"]
    devs = [d for d in cfg_devices if d.transport == "tcp"]
    if extra is not None:
        with extra.open("rb") as f:
            raw = tomllib.load(f).get("devices", [])
        probs: list[Problem] = []
        for i, r in enumerate(raw):
            try:
                devs.append(DeviceConfig.model_validate(r))
            except ValueError as e:
                probs.append(Problem(f"devices[{i}]", str(e).splitlines()[0]))
        if probs:
            raise InputError(f"HIL_RECORD={extra}", probs)
    return devs, notes


class Recorder:
    """Polls meters and miners read-only and appends one timeline row per period."""

    def __init__(self, devices: list[DeviceConfig], drivers: dict[str, MinerDriver],
                 t0: float, rig: Rig) -> None:
        self.acq = Acquisition(devices, source="recorder") if devices else None
        self.drivers = drivers
        self.t0, self.rig = t0, rig
        self.rows: list[Row] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.acq is not None:
            await self.acq.start()
        self._task = asyncio.create_task(self._run(), name="hil-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.acq is not None:
            await self.acq.stop()
        for d in self.drivers.values():
            with contextlib.suppress(Exception):
                await d.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._row()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recorder row failed")
            await asyncio.sleep(RECORD_PERIOD_S)

    async def _row(self) -> None:
        statuses = await asyncio.gather(*(d.read() for d in self.drivers.values()))
        r = self.acq.readings() if self.acq is not None else {}

        def v(q: str) -> float:
            x = r.get(q)
            return x.value if x is not None else math.nan

        miner_w = {s.name: (s.power_w if s.state is not State.UNAVAILABLE else 0.0)
                   for s in statuses}
        grid, pv, bat = v("grid_power_w"), v("pv_power_w"), v("battery_power_w")
        load = (0.0 if math.isnan(pv) else pv) + grid - (0.0 if math.isnan(bat) else bat) \
            - sum(miner_w.values())
        st = SiteState(time.time(), 0.0 if math.isnan(pv) else pv, load, grid,
                       0.0 if math.isnan(bat) else bat, v("soc_pct"), math.nan, miner_w)
        proc = self.rig.proc
        self.rows.append(Row(
            time.monotonic() - self.t0, st,
            {s.name: s.state not in (State.RUNNING, State.BOOTING) for s in statuses},
            {s.name: (s.target_w if s.target_w is not None else math.nan) for s in statuses},
            tuple(sorted(self.rig.active)), proc is not None and proc.poll() is None))


async def run_on_target(s: Scenario, target: Path, out: Path, controller: str = "real",
                        record: Path | None = None) -> RunRecord:
    """One scenario against the real site (call needs_emulator first)."""
    out.mkdir(parents=True, exist_ok=True)
    d = load_target(target)
    data_dir = out / "data"
    data_dir.mkdir(exist_ok=True)
    for sec in PATCHABLE:
        if sec in s.patches:
            d[sec] = {**d.get(sec, {}), **s.patches[sec]}
    d["service"] = {**d.get("service", {}), "data_dir": str(data_dir)}
    d["ledger"] = {**d.get("ledger", {}), "data_dir": str(data_dir)}
    cfg_path = out / "site.toml"
    cfg_path.write_bytes(tomli_w.dumps(d).encode())
    cfg = parse_site(d, str(cfg_path))
    devices, notes = recorder_devices(list(cfg.devices), record)
    for n in notes:
        log.warning("HIL target: %s", n)
    (out / "recorder-notes.txt").write_text("".join(n + "\n" for n in notes))
    rig = Rig(s, out, controller)
    rig.clock_file.write_text("+0\n")
    rec = RunRecord(s, d, d, out=out)
    rec.ledger_url = cfg.ledger.url
    rig._t0 = t0 = time.monotonic()
    recorder = Recorder(devices, build_drivers(cfg), t0, rig)
    await recorder.start()
    rig._log_f = (out / "hearth-run.log").open("wb")
    rig._start_controller(cfg_path)
    try:
        async def apply(f: Fault, on: bool, now: float) -> None:
            if f.kind == "clock_jump":
                if on:
                    rig.clock_offset_s += f.value
                    rig.clock_file.write_text(f"{rig.clock_offset_s:+.0f}\n")
                    rig.active.add(f.kind)
                else:
                    rig.active.discard(f.kind)
            log.warning("HIL target fault %s %s at %.1f s", f.kind, "ON" if on else "cleared",
                        now)

        await rig.play_faults(cfg_path, rec, apply)
    finally:
        await rig.stop_controller(rec)
        await recorder.stop()
        rig._log_f.close()
    rec.rows = recorder.rows
    write_timeline(rec, out / "timeline.csv")
    return rec


def write_skipped(s: Scenario, reason: str, out: Path) -> dict[str, Any]:
    """report.json + junit.xml of a scenario not run: skipped, with the reason."""
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"scenario": s.name, "description": s.description,
                           "controller": "real", "passed": None, "skipped": reason,
                           "failed": [], "duration_s": s.duration_s, "faults": [],
                           "figures": {}, "checks": []}
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    suite = ET.Element("testsuite", name=f"hil.{s.name}", tests="1", failures="0",
                       skipped="1")
    tc = ET.SubElement(suite, "testcase", classname=f"hil.{s.name}", name="scenario")
    ET.SubElement(tc, "skipped", message=reason)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
    return doc


def target_from_env() -> tuple[Path, Path | None] | None:
    t = os.environ.get("HIL_TARGET")
    if not t:
        return None
    rec = os.environ.get("HIL_RECORD")
    return Path(t), (Path(rec) if rec else None)
