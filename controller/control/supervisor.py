"""The supervisor: above the loops, it decides what they regulate to and what bounds them.

Pure (no clock: `now` and the snapshot's `utc_s` are inputs). Called from
`Controller.step` once per tick, after the hard limits and before the loops, it turns
mode, prices, demand-response overrides, the day-ahead plan, the schedule, tank and
battery state into one `Decision`:

- `setpoint_w`: what the grid loop regulates its process value to (grid and heating: a
  small export; island: a battery charge target, sign-flipped so import-like is +);
- `floor_w`: a total the miners should reach even if it must be bought (the price rule,
  the day-ahead plan, a DR absorb request, heating below its price cap);
- `soft_cap_w`: a price decision that lowers the miners (exporting beats mining, a price
  spike); it respects minimum on-times, it is not a safety limit;
- `hard_cap_w`: the schedule (outside the allowed windows: 0; quiet hours: their cap),
  shed at once like the other hard limits.

Hard limits (import limit, battery reserve, tank max, stale data, DR cap) are applied by
the controller on top of all of these, so nothing decided here can break them.

The reason words (`Commands.limiter` when the bound binds) are stable: "price", "plan",
"dr_absorb", "heating" (floors); "export_price", "price_spike" (soft caps);
"heating_price_cap", "island" (the loop itself, in those modes); "schedule",
"quiet_hours" (hard caps). docs/modes.md explains each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from controller.config.models import Mode, SiteConfig
from controller.control.overrides import Overrides
from controller.control.schedule import Schedule
from controller.control.types import Measurements

INF = math.inf
# Read every tick: module constants, not lookups on the enum class (in Python 3.11 those go
# through `EnumType.__getattr__`).
_ISLAND: Final = Mode.ISLAND
_HEATING: Final = Mode.HEATING
_GRID: Final = Mode.GRID


@dataclass(init=False)
class Decision:
    """One tick's decision (read only; its own `__init__`, for the reason given at
    `allocator.Budgets`)."""

    setpoint_w: float  # grid-loop setpoint, in its process units (import +)
    floor_w: float  # the miners' total should reach this even if bought (0 = none)
    floor_reason: str
    soft_cap_w: float  # price decision, respects min on-times (inf = none)
    soft_reason: str
    hard_cap_w: float  # schedule (inf = none)
    hard_reason: str
    hard_detail: str  # for people, logged as a trip while it sheds
    loop_reason: str  # what to call the grid loop when it binds
    try_start_w: float = 0.0  # island, battery full: room to try one more miner

    def __init__(self, setpoint_w: float, floor_w: float, floor_reason: str, soft_cap_w: float,
                 soft_reason: str, hard_cap_w: float, hard_reason: str, hard_detail: str,
                 loop_reason: str, try_start_w: float = 0.0) -> None:
        self.setpoint_w = setpoint_w
        self.floor_w = floor_w
        self.floor_reason = floor_reason
        self.soft_cap_w = soft_cap_w
        self.soft_reason = soft_reason
        self.hard_cap_w = hard_cap_w
        self.hard_reason = hard_reason
        self.hard_detail = hard_detail
        self.loop_reason = loop_reason
        self.try_start_w = try_start_w


class Worth:
    """Each miner's value per kWh (BTC, plus displaced heat when the tank wants heat, for the
    miners that heat it); the power worth running at a given price."""

    def __init__(self, rows: Sequence[tuple[float, float, float]]) -> None:
        # (max_w, cold value, warm value) per miner, most efficient first.
        self.rows = tuple(rows)

    def power_w(self, price_per_kwh: float, tank_wants_heat: bool) -> float:
        """The power of every miner whose value per kWh is above this price. Not only a
        prefix of the efficiency order: with the tank wanting heat, a less efficient miner
        that heats it can be worth more than a better one that does not. (The allocator
        still fills the total most efficient first, so a few watts may go to a miner not
        worth it on its own.)"""
        total = 0.0
        for max_w, cold, warm in self.rows:
            if (warm if tank_wants_heat else cold) > price_per_kwh:
                total += max_w
        return total


class IslandBand:
    """Island mode's battery target, with a hysteresis band at the top.

    Below `full_soc_pct` the battery charges first: the miners only take what it cannot
    (its charge power is held `probe_w` below its maximum, so PV the inverter would curtail
    shows up as a battery at its limit). At the top the battery is full and cannot tell
    how much PV is being curtailed: while it does not discharge, the miners climb by
    `probe_w` a tick (pulling the curtailed PV in); the tick it discharges, they drop by
    what it gave. It stays full (it recharges the tick after), the miners ride the edge of
    the PV actually there, and the battery leaves the band only if it drains. A miner too big
    for that small probe to reveal may be tried (`start_w`): if the battery then has to
    discharge more than twice the probe, the PV was not there, and trying waits
    `backoff_s`.
    """

    def __init__(self, full_soc_pct: float, hysteresis_pct: float, max_charge_w: float,
                 probe_w: float, start_w: float, backoff_s: float) -> None:
        self.full_soc_pct = full_soc_pct
        self.leave_soc_pct = full_soc_pct - hysteresis_pct
        self.charge_target_w = max(max_charge_w - probe_w, 0.0)
        self.probe_w = probe_w
        self.start_w = start_w
        self.backoff_s = backoff_s
        self.full = False
        self.no_try_before_s = -INF

    def target_w(self, soc_pct: float, battery_w: float) -> float:
        """Battery power (charge +) the miners regulate to."""
        if soc_pct >= self.full_soc_pct or (self.full and soc_pct > self.leave_soc_pct):
            self.full = True
            return -self.probe_w if battery_w >= 0 else 0.0
        self.full = False
        return self.charge_target_w

    def try_start_w(self, battery_w: float, now: float) -> float:
        """Power the allocator may assume to start one more miner (0: none)."""
        if not self.full:
            return 0.0
        if battery_w < -2.0 * self.probe_w:
            self.no_try_before_s = now + self.backoff_s
            return 0.0
        return self.start_w if now >= self.no_try_before_s else 0.0


class Supervisor:
    def __init__(self, cfg: SiteConfig, worth: Worth) -> None:
        c = cfg.control
        self.worth = worth
        self.capacity_w = cfg.miner_capacity_w
        self.export_setpoint_w = -c.export_margin_w
        self.exportable_w = cfg.site.grid_export_limit_w - 2 * c.export_margin_w
        self.hysteresis = c.price_hysteresis_per_kwh
        self.min_hold_s = c.price_decision_min_hold_s
        self.spike_per_kwh = c.price_spike_per_kwh
        self.export_rule = c.surplus_policy == "value"
        bh = cfg.backup_heat
        self.heating_cap_per_kwh = (
            c.heating_price_cap_per_kwh if c.heating_price_cap_per_kwh is not None
            else float(bh.fuel_price_per_kwh) / bh.efficiency
        )
        self.island: IslandBand | None = None
        if cfg.battery is not None:
            biggest_start_w = max(mc.min_power_w for mc in cfg.miners) + c.on_hysteresis_w
            self.island = IslandBand(c.island_full_soc_pct, c.battery_soc_hysteresis_pct,
                                     cfg.battery.max_charge_w, c.island_probe_w,
                                     biggest_start_w, c.island_probe_backoff_s)
        self.schedule = (
            Schedule(cfg.schedule, cfg.site.timezone, cfg.site.id)
            if cfg.schedule is not None else None
        )
        # The price rule's state: how much it buys for, and since when (hysteresis, hold).
        self.buy_level_w = 0.0
        self.buy_level_since_s = -INF
        self._band_key: tuple[float, bool] | None = None
        self._band = (0.0, 0.0)
        # The export rule's state (surplus_policy = "value"): the miner power worth more
        # than exporting, and since when (the same margin and hold as the price rule).
        self.mine_level_w = self.capacity_w
        self.mine_level_since_s = -INF
        self._export_key: tuple[float, bool] | None = None
        self._export_band = (0.0, 0.0)

    def set_worth(self, worth: Worth) -> None:
        """New values per kWh (new bitcoin terms): the price bands are derived again; the
        decisions taken keep their hold time."""
        self.worth = worth
        self._band_key = None
        self._export_key = None

    # -- price rule ----------------------------------------------------------------------

    def buy_level_w_at(self, price_per_kwh: float, tank_wants_heat: bool, now: float) -> float:
        """Miner power worth buying at this import price, with a margin and a minimum hold.

        More miners are bought for only when they stay worth it with the margin added to
        the price; they are kept until they are not worth it even with the margin taken
        off. A change then holds at least `price_decision_min_hold_s`.
        """
        h, level = self.hysteresis, self.buy_level_w
        key = (price_per_kwh, tank_wants_heat)
        if key != self._band_key:  # prices change hourly: most ticks reuse the band
            self._band_key = key
            self._band = (self.worth.power_w(price_per_kwh + h, tank_wants_heat),
                          self.worth.power_w(price_per_kwh - h, tank_wants_heat))
        up, down = self._band
        new = up if level < up else down if level > down else level
        if new != level and now - self.buy_level_since_s >= self.min_hold_s:
            self.buy_level_w, self.buy_level_since_s = new, now
        return self.buy_level_w

    def mine_level_w_at(self, export_price_per_kwh: float, tank_wants_heat: bool,
                        now: float) -> float:
        """Miner power whose kWh earns more than exporting it, with a margin and a hold:
        a miner held off comes back only when it earns the export price plus the margin,
        and is held off only when it earns less than the export price minus it (a value
        near the export price does not flap)."""
        h, level = self.hysteresis, self.mine_level_w
        key = (export_price_per_kwh, tank_wants_heat)
        if key != self._export_key:
            self._export_key = key
            self._export_band = (self.worth.power_w(export_price_per_kwh + h, tank_wants_heat),
                                 self.worth.power_w(export_price_per_kwh - h, tank_wants_heat))
        up, down = self._export_band
        new = up if level < up else down if level > down else level
        if new != level and now - self.mine_level_since_s >= self.min_hold_s:
            self.mine_level_w, self.mine_level_since_s = new, now
        return self.mine_level_w

    # -- the decision --------------------------------------------------------------------

    def decide(self, mode: Mode, m: Measurements, now: float, o: Overrides,
               tank_wants_heat: bool, miner_w: float, process_w: float) -> Decision:
        """One tick's decision. `miner_w`: what the miners draw now; `process_w`: what the
        grid loop regulates (import +), so surplus = miner_w + setpoint − process_w."""
        setpoint = self.export_setpoint_w
        floor, floor_reason = 0.0, ""
        soft, soft_reason = INF, ""
        loop_reason = "grid"
        try_start = 0.0
        imp, exp = m.import_price_per_kwh, m.export_price_per_kwh

        if mode is _ISLAND:
            # No grid to buy from or sell to: prices and DR absorb do not apply.
            soc, bat = m.soc_pct, m.battery_power_w
            if self.island is not None and soc is not None and bat is not None:
                setpoint = -self.island.target_w(soc.value, bat.value)
                try_start = self.island.try_start_w(bat.value, now)
            loop_reason = "island"
        else:
            if mode is _HEATING:
                if imp is None or imp <= self.heating_cap_per_kwh:
                    floor, floor_reason = self.capacity_w, "heating"  # the tank loop leads
                else:
                    loop_reason = "heating_price_cap"  # surplus only; backup carries the rest
            if o.plan_min_w is not None:
                if o.plan_min_w > floor:
                    floor, floor_reason = o.plan_min_w, "plan"
            elif imp is not None and mode is _GRID:
                buy = self.buy_level_w_at(imp, tank_wants_heat, now)
                if buy > floor:
                    floor, floor_reason = buy, "price"
            if exp is not None and exp < 0:
                setpoint = 0.0  # exporting costs money: eat the export margin too
            elif (self.export_rule and exp is not None and mode is _GRID
                  and o.plan_min_w is None):
                worth_w = self.mine_level_w_at(exp, tank_wants_heat, now)
                if worth_w < self.capacity_w:
                    soft = max(worth_w, self._unexportable_w(miner_w, setpoint, process_w))
                    soft_reason = "export_price"
            soft = max(soft, floor)  # a price cap never undoes a floor
            if self.spike_per_kwh is not None and imp is not None and imp >= self.spike_per_kwh:
                soft = self._unexportable_w(miner_w, setpoint, process_w)
                soft_reason = loop_reason = "price_spike"
                floor = min(floor, soft)
            if o.dr_absorb_w is not None and o.dr_absorb_w > floor:
                floor, floor_reason = o.dr_absorb_w, "dr_absorb"
            soft = max(soft, floor)

        hard, hard_reason, detail = INF, "", ""
        if self.schedule is not None:
            if m.utc_s is None:
                hard, hard_reason, detail = 0.0, "schedule", "no wall-clock time in the snapshot"
            else:
                st = self.schedule.at(m.utc_s)
                hard, hard_reason, detail = st.cap_w, st.reason, st.detail
        return Decision(setpoint, floor, floor_reason, soft, soft_reason, hard, hard_reason,
                        detail, loop_reason, try_start)

    def _unexportable_w(self, miner_w: float, setpoint_w: float, process_w: float) -> float:
        """Surplus the export limit would curtail if the miners did not take it: price
        rules never turn PV into curtailment. At the limit it climbs by the export margin
        a tick, so a running miner follows curtailed PV up (a stopped one is not started
        to look for it: the meter cannot show what the inverter curtails)."""
        surplus_w = miner_w + setpoint_w - process_w
        return max(surplus_w - self.exportable_w, 0.0)
