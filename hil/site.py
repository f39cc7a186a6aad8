"""An emulated site behind the real protocols: what `make demo` and the HIL rig run.

The plant model replays a real-data trace in real time (optionally sped up). Its meters
are served by a Modbus TCP emulator with the Victron GX system-service map (grid, PV,
battery, SoC in one device), and each miner by an emulator of its own firmware API, backed
by the same miner model the simulator uses. `hearth run` talks to all of them as it would
to real hardware; the site file it needs (with the emulators' ports) is written out.

Time: the plant and the miners run on a virtual clock, `speed` times faster than the wall
clock, starting at `start_s` into the trace. The controller keeps its own real-time tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.config import SiteConfig, parse_site
from controller.control.types import Measurements, MinerCommand, Reading
from controller.sim.plant import Plant
from controller.sim.plant.miners import MinerModel, miner_can_pause
from controller.trace.reader import Trace, read_trace
from hil.miners.core import EmulatedMiner
from hil.miners.factory import emulator_for
from hil.miners.servers import Emulator
from hil.modbus.feed import values_from_measurements
from hil.modbus.image import DeviceImage
from hil.modbus.server import EmulatedDevice, ModbusEmulator

log = logging.getLogger(__name__)

GX_UNIT = 100
DEMO_PASSWORD = "hearth-demo"  # the emulated Braiins OS login; a lab site, not a secret


class VirtualClock:
    """Seconds on the plant's clock: the trace's start plus `speed` × real time elapsed."""

    def __init__(self, start_s: float, speed: float) -> None:
        self.start_s, self.speed = start_s, speed
        self._real0 = time.monotonic()

    def __call__(self) -> float:
        return self.start_s + (time.monotonic() - self._real0) * self.speed


@dataclass
class SiteState:
    """The latest plant values, for status lines and tests."""

    at_s: float = 0.0
    pv_w: float = 0.0
    load_w: float = 0.0
    grid_w: float = 0.0
    battery_w: float = 0.0
    soc_pct: float = float("nan")
    tank_c: float = float("nan")
    miner_w: dict[str, float] = field(default_factory=dict)


def _emulator_for(api: str, miner: EmulatedMiner, driver: dict[str, Any]) -> Emulator:
    """Lab credentials: the site file's literal password, else the demo one."""
    return emulator_for(api, miner, {**driver, "password": _lab_password(driver)})


def _lab_password(driver: dict[str, Any]) -> str:
    pw = driver.get("password")
    return str(pw) if pw is not None else DEMO_PASSWORD


class EmulatedSite:
    def __init__(self, site_file: Path, trace: Trace | Path, *, speed: float = 1.0,
                 start_s: float = 0.0, step_s: float = 0.5) -> None:
        with site_file.open("rb") as f:
            self.site_dict: dict[str, Any] = tomllib.load(f)
        self.cfg: SiteConfig = parse_site(self.site_dict, str(site_file))
        self.trace = trace if isinstance(trace, Trace) else read_trace(trace, self.cfg)
        self.clock = VirtualClock(float(self.trace.time_s[0]) + start_s, speed)
        self.step_s = step_s
        self.plant = Plant(self.cfg)
        # Miners start paused, except firmware that has no pause (AxeOS): it always runs.
        self.miners = {m.name: EmulatedMiner(m, clock=self.clock,
                                             start_running=not miner_can_pause(m))
                       for m in self.cfg.miners}
        self._heats_tank = {m.name: m.heats_tank for m in self.cfg.miners}
        self.modbus = ModbusEmulator([EmulatedDevice(GX_UNIT, DeviceImage("victron-gx"))],
                                     name="gx")
        self.miner_emulators: dict[str, Emulator] = {}
        self.modbus_port = 0
        self.state = SiteState()
        self.pv_offset_w = 0.0  # a test can step PV up or down on top of the trace
        self._task: asyncio.Task[None] | None = None
        self.on_step: list[Callable[[SiteState], None]] = []
        # The satellite's contactor feeding the tank miners (None: always closed).
        self.tank_contactor: Callable[[], bool] | None = None
        self._unpowered: set[str] = set()

    # -- start / stop ---------------------------------------------------------------------

    async def start(self) -> None:
        self.modbus_port = await self.modbus.start_tcp()
        for m in self.cfg.miners:
            emu = _emulator_for(str(m.driver.get("api")), self.miners[m.name], m.driver)
            await emu.start()
            self.miner_emulators[m.name] = emu
        self._step()  # meters show real values before anyone reads them
        self._task = asyncio.create_task(self._run(), name="emulated-site")
        log.info("emulated site %s: Modbus GX on 127.0.0.1:%d, miners %s", self.cfg.site.id,
                 self.modbus_port,
                 ", ".join(f"{n}:{e.port}" for n, e in self.miner_emulators.items()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for emu in self.miner_emulators.values():
            await emu.stop()
        await self.modbus.stop()

    # -- the controller's view ------------------------------------------------------------

    def controller_site(self, data_dir: Path, tick_s: float = 1.0,
                        start_delay_max_s: float = 5.0, hmi_port: int | None = None
                        ) -> dict[str, Any]:
        """The site file `hearth run` needs to reach these emulators."""
        d = {k: v for k, v in self.site_dict.items()}
        d["devices"] = [{
            "name": "gx", "role": "hybrid", "map": "victron-gx", "host": "127.0.0.1",
            "port": self.modbus_port, "unit_id": GX_UNIT, "period_s": 0.5, "timeout_s": 1.0,
        }]
        miners = []
        for m in self.site_dict["miners"]:
            drv = dict(m.get("driver", {}))
            drv.update(host="127.0.0.1", port=self.miner_emulators[m["name"]].port)
            if drv.get("api") in ("braiins-os", "whatsminer", "vnish"):
                drv["password"] = _lab_password(drv)
                drv.pop("password_env", None)
            if drv.get("api") == "axeos":
                drv["min_write_interval_s"] = 0
            miners.append({**m, "driver": drv})
        d["miners"] = miners
        d["control"] = {**d.get("control", {}), "tick_s": tick_s}
        d["service"] = {**d.get("service", {}), "data_dir": str(data_dir),
                        "start_delay_max_s": start_delay_max_s}
        d["ledger"] = {**d.get("ledger", {}), "data_dir": str(data_dir)}
        # The HMI on this machine only (no port given: not served, e.g. in tests).
        d["hmi"] = ({**d.get("hmi", {}), "listen_host": "127.0.0.1", "listen_port": hmi_port}
                    if hmi_port else {**d.get("hmi", {}), "enabled": False})
        return d

    # -- the plant ------------------------------------------------------------------------

    def _row(self, t: float) -> int:
        tr = self.trace
        i = int((t - tr.time_s[0]) // tr.step_s)
        return min(max(i, 0), len(tr.time_s) - 1)

    def _step(self) -> None:
        now = self.clock()
        dt = max(now - self.state.at_s, 0.0) if self.state.at_s else 0.0
        i = self._row(now)
        tr = self.trace
        pv = max(float(tr.pv_w[i]) + self.pv_offset_w, 0.0)
        load, heat = float(tr.load_w[i]), float(tr.heat_demand_w[i])
        powers = {}
        for name, em in self.miners.items():
            em.advance()
            if self.tank_contactor is not None and self._heats_tank[name]:
                self._supply(name, em, self.tank_contactor())
            powers[name] = em.model.power_w
        miner_w = sum(powers.values())
        tank_w = sum(p for n, p in powers.items() if self._heats_tank[n])
        if dt > 0:
            self.plant.step_with_miner_power(dt, pv, load, heat, miner_w, tank_w)
        pv_used, bat, grid = self.plant.balance_now(pv, load, miner_w)
        soc = self.plant.battery.soc_pct if self.plant.battery else float("nan")
        tank = self.plant.tank.temp_c if self.plant.tank else float("nan")
        m = Measurements(grid_power_w=Reading(grid, now), pv_power_w=Reading(pv_used, now),
                         battery_power_w=Reading(bat, now) if self.plant.battery else None,
                         soc_pct=Reading(soc, now) if self.plant.battery else None)
        self.modbus.set_values(values_from_measurements(m, phases=self.cfg.site.phases))
        self.state = SiteState(now, pv_used, load, grid, bat, soc, tank, powers)
        for cb in self.on_step:
            cb(self.state)

    def _supply(self, name: str, em: EmulatedMiner, closed: bool) -> None:
        """Contactor open: the miner loses power at once (model reset, API silent, as an
        unplugged box's); closed again: it boots as after a power cut, to its last target
        unless it had been paused."""
        if closed == (name not in self._unpowered):
            return
        if closed:
            self._unpowered.discard(name)
            em.hang = False
            if not em.paused:
                em.model.apply(MinerCommand(name, True, em.target_w))
        else:
            self._unpowered.add(name)
            em.hang = True
            em.model = MinerModel(em.cfg, running=False)  # no power: even AxeOS is off
        log.warning("emulated site: contactor %s, miner %s %s", "closed" if closed else "open",
                    name, "powered" if closed else "without power")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.step_s)
            try:
                self._step()
            except Exception:
                log.exception("emulated site step failed")
