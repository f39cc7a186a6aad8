"""The whole plant behind the meter: PV, house load, battery, grid, tank, backup, miners.

Used by `hearth sim` now and by the HIL rig (which puts Modbus and miner APIs in front of
it) later. Two calls per step:

- `measure(now, pv, load)`: what the meters and miners read at the start of a step: the
  step's PV and load (they changed at `now`) against the miners as they were.
- `step(commands, dt, pv, load, heat_demand)`: apply the commands and integrate over the
  step. Flows are step averages; SoC and tank temperature are end-of-step states.

Sign conventions are the project's: grid import +, battery charge +. PV above what the
house, miners, battery and export limit can take is curtailed by the inverter. Energy
balances exactly in every step: pv + grid = load + miners + battery.

Island (`control.mode = "island"`, or `Plant(cfg, island=True)`): there is no grid and no
grid meter (`grid_w` is always 0, `measure()` reports no grid reading). PV the house,
miners and battery cannot take is curtailed; load the PV and the battery cannot cover is
not served (`unserved_w`; `load_w` is then the load actually served, so the balance
above still holds). The miners are served first in that case, as a real off-grid
inverter sheds no single load: whether they caused the shortfall is judged against a
miner-less run of the same trace.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from controller.config.models import Mode, SiteConfig
from controller.control.types import Commands, Measurements, Reading
from controller.economics.hashprice import BtcTerms
from controller.sim.plant.battery import BatteryModel
from controller.sim.plant.miners import MinerModel
from controller.sim.plant.tank import TankModel


class StepFlows(NamedTuple):
    pv_w: float  # PV used (after curtailment)
    curtailed_w: float
    load_w: float
    miner_w: float
    battery_w: float
    soc_pct: float  # end of step, nan without battery
    grid_w: float
    tank_c: float  # end of step, nan without tank
    heat_to_tank_w: float
    heat_demand_w: float
    heat_from_tank_w: float
    backup_heat_w: float
    terahashes: float
    miner_energy_j: tuple[float, ...]  # per miner, config order
    starts: tuple[int, ...]  # per miner, config order
    unserved_w: float = 0.0  # island: load the PV and battery could not cover


class Plant:
    def __init__(self, cfg: SiteConfig, island: bool | None = None) -> None:
        self.cfg = cfg
        self.island = cfg.control.mode is Mode.ISLAND if island is None else island
        self.miners = [MinerModel(m) for m in cfg.miners]
        self._miner_index = {m.name: i for i, m in enumerate(cfg.miners)}
        self.battery = BatteryModel(cfg.battery) if cfg.battery is not None else None
        self.tank = TankModel(cfg.tank) if cfg.tank is not None else None
        self._heat_fraction = cfg.tank.miner_heat_fraction if cfg.tank is not None else 0.0
        self._heats_tank = [m.heats_tank for m in cfg.miners]
        self.export_limit_w = cfg.site.grid_export_limit_w
        self.meter_frozen = False  # fault injection: meter keeps its last timestamp
        self._last_meter_at = -math.inf
        self.measured_miner_w = 0.0  # the miners' total at the last `measure`

    def _balance(self, pv_w: float, load_w: float, miner_w: float, dt_s: float
                 ) -> tuple[float, float, float]:
        """(pv used, battery, grid) for a held pv/load/miner over dt (dt = 0: instantaneous).

        Island: grid is 0 and the third value is the unserved load instead (>= 0)."""
        net = pv_w - load_w - miner_w
        bat = self.battery.response_w(net, dt_s) if self.battery is not None else 0.0
        export = net - bat
        if self.island:
            if export >= 0:
                return pv_w - export, bat, 0.0  # nowhere to send it: curtailed
            return pv_w, bat, -export  # the battery is at its limit: load not served
        pv_used = pv_w
        if export > self.export_limit_w:
            pv_used = pv_w - (export - self.export_limit_w)
        grid = load_w + miner_w + bat - pv_used
        return pv_used, bat, grid

    def measure(
        self,
        now_s: float,
        pv_w: float,
        load_w: float,
        import_price_per_kwh: float | None = None,
        export_price_per_kwh: float | None = None,
        dr_limit_w: float | None = None,
        utc_s: float | None = None,
        btc_terms: BtcTerms | None = None,
    ) -> Measurements:
        """Meter and miner readings at `now`; prices and DR cap are passed through as the
        signals of the same snapshot (they come from a feed, not from the plant). The
        plant's clock is the trace's, in UTC epoch seconds: `utc_s` defaults to `now_s`."""
        miner_w = sum(mm.power_w for mm in self.miners)
        self.measured_miner_w = miner_w  # what the miners' readbacks below add up to
        pv_used, bat, grid = self._balance(pv_w, load_w, miner_w, 0.0)
        if not self.meter_frozen:
            self._last_meter_at = now_s
        return Measurements(
            grid_power_w=None if self.island else Reading(grid, self._last_meter_at),
            pv_power_w=Reading(pv_used, now_s),
            battery_power_w=Reading(bat, now_s) if self.battery is not None else None,
            soc_pct=Reading(self.battery.soc_pct, now_s) if self.battery is not None else None,
            tank_temp_c=Reading(self.tank.temp_c, now_s) if self.tank is not None else None,
            miners={m.cfg.name: m.reading(now_s) for m in self.miners},
            import_price_per_kwh=import_price_per_kwh,
            export_price_per_kwh=export_price_per_kwh,
            dr_limit_w=dr_limit_w,
            utc_s=now_s if utc_s is None else utc_s,
            btc_terms=btc_terms,
        )

    def step(
        self,
        commands: Commands | None,
        dt_s: float,
        pv_w: float,
        load_w: float,
        heat_demand_w: float,
    ) -> StepFlows:
        starts = [0] * len(self.miners)
        if commands is not None:
            for cmd in commands.miners:
                i = self._miner_index[cmd.name]
                starts[i] = self.miners[i].apply(cmd)
        energies: list[float] = []
        th = 0.0
        tank_heat_j = 0.0
        for mm, to_tank in zip(self.miners, self._heats_tank, strict=True):
            e, h = mm.advance(dt_s)
            energies.append(e)
            th += h
            if to_tank:
                tank_heat_j += e
        return self._rest_of_site(dt_s, pv_w, load_w, heat_demand_w, sum(energies) / dt_s,
                                  tank_heat_j / dt_s, th, tuple(energies), tuple(starts))

    def step_with_miner_power(
        self, dt_s: float, pv_w: float, load_w: float, heat_demand_w: float,
        miner_w: float, tank_miner_w: float,
    ) -> StepFlows:
        """Step everything but the miners, whose average power comes from outside.

        The HIL rig's miners live behind their API emulators (each with its own model and
        clock); the plant then only needs what they drew to balance the site and heat the
        tank.
        """
        return self._rest_of_site(dt_s, pv_w, load_w, heat_demand_w, miner_w, tank_miner_w,
                                  0.0, (), ())

    def _rest_of_site(
        self, dt_s: float, pv_w: float, load_w: float, heat_demand_w: float, miner_w: float,
        tank_miner_w: float, th: float, energies: tuple[float, ...], starts: tuple[int, ...],
    ) -> StepFlows:
        pv_used, bat, grid = self._balance(pv_w, load_w, miner_w, dt_s)
        unserved = 0.0
        if self.island:
            unserved, grid = grid, 0.0
            load_w -= unserved  # what was served, so the balance holds
        soc = math.nan
        if self.battery is not None:
            self.battery.advance(bat, dt_s)
            soc = self.battery.soc_pct
        heat_in = tank_miner_w * self._heat_fraction
        if self.tank is not None:
            from_tank, backup = self.tank.advance(heat_in, heat_demand_w, dt_s)
            tank_c = self.tank.temp_c
        else:
            from_tank, backup, tank_c = 0.0, heat_demand_w, math.nan
        return StepFlows(
            pv_w=pv_used, curtailed_w=pv_w - pv_used, load_w=load_w, miner_w=miner_w,
            battery_w=bat, soc_pct=soc, grid_w=grid, tank_c=tank_c, heat_to_tank_w=heat_in,
            heat_demand_w=heat_demand_w, heat_from_tank_w=from_tank, backup_heat_w=backup,
            terahashes=th, miner_energy_j=energies, starts=starts, unserved_w=unserved,
        )

    def balance_now(self, pv_w: float, load_w: float, miner_w: float
                    ) -> tuple[float, float, float]:
        """(pv used, battery, grid) right now, for meters that read between steps."""
        pv_used, bat, grid = self._balance(pv_w, load_w, miner_w, 0.0)
        return pv_used, bat, 0.0 if self.island else grid


class MinerlessSurplus:
    """What would be exported or curtailed each step if the site had no miners.

    The counterfactual behind "surplus" and "surplus capture": the same battery, the same
    export limit, no miners (the tank does not matter for it, so it is left out). Fed
    the trace in consecutive pieces, it carries the battery's state between them.
    """

    def __init__(self, cfg: SiteConfig, step_s: float) -> None:
        self.battery = BatteryModel(cfg.battery) if cfg.battery is not None else None
        self.step_s = step_s

    def run(self, pv_w: list[float], load_w: list[float]) -> list[float]:
        battery, step_s = self.battery, self.step_s
        if battery is None:
            return [max(pv - load, 0.0) for pv, load in zip(pv_w, load_w, strict=True)]
        out = []
        for pv, load in zip(pv_w, load_w, strict=True):
            net = pv - load
            bat = battery.response_w(net, step_s)
            battery.advance(bat, step_s)
            out.append(max(net - bat, 0.0))
        return out


def surplus_without_miners(cfg: SiteConfig, pv_w: list[float], load_w: list[float],
                           step_s: float) -> list[float]:
    """`MinerlessSurplus` over a whole trace."""
    return MinerlessSurplus(cfg, step_s).run(pv_w, load_w)
