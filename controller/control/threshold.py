"""The baseline: what a typical home-automation rule does with a miner.

Switch a miner on (at full power) after it has seen export above its minimum power for
1 minute, switch the last one started off after 3 minutes of import (evcc's enable/disable
delays). It looks only at the grid meter, like such rules do, plus a tank thermostat
(off at the tank's max minus margin) since nobody would run a tank heater without one.
It exists so every simulation can show what the Hearth controller gains over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.config.models import SiteConfig
from controller.control.types import Commands, Measurements, MinerCommand, Trip


@dataclass
class _Switch:
    on: bool = False
    since_s: float | None = None  # the condition for a change holds since


class ThresholdController:
    name = "threshold"

    def __init__(
        self, cfg: SiteConfig, enable_delay_s: float = 60.0, disable_delay_s: float = 180.0
    ) -> None:
        self.cfg = cfg
        self.enable_delay_s = enable_delay_s
        self.disable_delay_s = disable_delay_s
        self.switches = {m.name: _Switch() for m in cfg.miners}
        self._started: list[str] = []  # last started is switched off first

    def step(self, m: Measurements, now: float) -> Commands:
        cfg = self.cfg
        trips: list[Trip] = []
        grid = m.grid_power_w.value if m.grid_power_w is not None else math.nan
        tank_hot = False
        if cfg.tank is not None and m.tank_temp_c is not None:
            tank_hot = m.tank_temp_c.value >= cfg.tank.max_c - cfg.control.tank_max_margin_c
            if tank_hot:
                trips.append(Trip("tank_max", "tank thermostat open"))

        # Off: tank thermostat at once; import for the disable delay, last started first.
        for name in list(self._started):
            mc = next(x for x in cfg.miners if x.name == name)
            if tank_hot and mc.heats_tank:
                self._off(name)
        if self._started:
            last = self.switches[self._started[-1]]
            if grid > 0:
                last.since_s = now if last.since_s is None else last.since_s
                if now - last.since_s >= self.disable_delay_s:
                    self._off(self._started[-1])
            else:
                last.since_s = None

        # On: each miner watches the export against its own minimum; at most one switches
        # on per tick, so two miners never start on the same watts.
        export = -grid
        switched = False
        for mc in cfg.miners:
            sw = self.switches[mc.name]
            if sw.on or (tank_hot and mc.heats_tank):
                continue
            if export >= mc.min_power_w:
                sw.since_s = now if sw.since_s is None else sw.since_s
                if not switched and now - sw.since_s >= self.enable_delay_s:
                    sw.on, sw.since_s, switched = True, None, True
                    self._started.append(mc.name)
            else:
                sw.since_s = None

        cmds = tuple(
            MinerCommand(mc.name, self.switches[mc.name].on,
                         mc.max_power_w if self.switches[mc.name].on else 0.0)
            for mc in cfg.miners
        )
        total = sum(c.power_target_w for c in cmds)
        return Commands(cmds, total, "threshold", "threshold", tuple(trips))

    def _off(self, name: str) -> None:
        sw = self.switches[name]
        sw.on, sw.since_s = False, None
        self._started.remove(name)
