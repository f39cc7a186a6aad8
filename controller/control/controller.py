"""The Hearth control core: `Controller.step(measurements, now) -> Commands`.

Pure: no clock, no I/O. One tick:

1. Hard limits from the frozen snapshot: stale meter/battery/tank data, import limit
   (main fuse and contract, minus headroom), demand-response cap, battery reserve, tank
   maximum (with a one-tick look-ahead so the tank cannot overshoot within a step).
2. Battery policy picks what the grid loop regulates (see `battery.py`); in island mode
   it regulates the battery itself.
3. The supervisor (`supervisor.py`) decides from mode, prices, overrides and schedule the
   loop's setpoint, a floor (power worth buying), a soft price cap and the schedule's cap.
4. Grid loop -> total miner power; tank loop -> cap on tank-heating miners. A min-selector
   combines them with the supervisor's bounds and every hard cap; the tank loop tracks the
   applied power while it is not the binding one (see `loops.py`).
5. The allocator turns the result into per-miner run/target commands.
Every hard limit that acts is returned as a `Trip` with a plain-words reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from controller.config.models import Mode, SiteConfig
from controller.control.allocator import Allocator, Budgets
from controller.control.battery import BatteryArbiter, BatteryPolicy
from controller.control.loops import GridLoop, TankLoop
from controller.control.overrides import NO_OVERRIDES, Overrides
from controller.control.supervisor import Supervisor, Worth
from controller.control.types import (
    Commands,
    Measurements,
    MinerCommand,
    MinerReading,
    Reading,
    Trip,
    new_commands,
)
from controller.economics.breakeven import site_break_even
from controller.economics.hashprice import BtcTerms, config_terms


@dataclass(init=False)
class StepDebug:
    """Internals of the last step, for tests, the HMI and tuning (read only; its own
    `__init__`, for the reason given at `allocator.Budgets`)."""

    dt_s: float
    process_w: float
    grid_loop_w: float
    tank_loop_w: float
    available_w: float
    hard_cap_w: float
    hard_tank_cap_w: float
    actual_w: float
    battery_policy: str
    limiter: str

    def __init__(self, dt_s: float, process_w: float, grid_loop_w: float, tank_loop_w: float,
                 available_w: float, hard_cap_w: float, hard_tank_cap_w: float, actual_w: float,
                 battery_policy: str, limiter: str) -> None:
        self.dt_s = dt_s
        self.process_w = process_w
        self.grid_loop_w = grid_loop_w
        self.tank_loop_w = tank_loop_w
        self.available_w = available_w
        self.hard_cap_w = hard_cap_w
        self.hard_tank_cap_w = hard_tank_cap_w
        self.actual_w = actual_w
        self.battery_policy = battery_policy
        self.limiter = limiter


# Read every tick: module constants, not lookups on the enum class (in Python 3.11 those go
# through `EnumType.__getattr__`).
_ISLAND: Final = Mode.ISLAND
_HEATING: Final = Mode.HEATING
_SELF_CONSUMPTION = frozenset({"battery_first", "miners_first"})
# Enum `.value` is a property lookup; the step reads these once per tick.
_MODE_VALUE = {m: m.value for m in Mode}
_POLICY_VALUE = {p: p.value for p in BatteryPolicy}


def _age(r: Reading | None, now: float) -> float:
    return math.inf if r is None else now - r.at_s


class Controller:
    """The production policy."""

    name = "hearth"

    def __init__(self, cfg: SiteConfig, tick_s: float | None = None) -> None:
        self.cfg = cfg
        c = cfg.control
        self.tick_s = tick_s if tick_s is not None else c.tick_s
        self.capacity_w = cfg.miner_capacity_w
        self.tank_capacity_w = sum(m.max_power_w for m in cfg.miners if m.heats_tank)
        self.grid_loop = GridLoop(c.grid_pid, -c.export_margin_w, self.capacity_w)
        self.tank_loop: TankLoop | None = None
        if cfg.tank is not None and self.tank_capacity_w > 0:
            t = cfg.tank
            standing_w = t.heat_loss_w_per_k * (t.target_c - t.ambient_c) / t.miner_heat_fraction
            self.tank_loop = TankLoop(c.tank_pid, t.target_c, self.tank_capacity_w, standing_w)
        self.battery = (
            BatteryArbiter(cfg.battery, c.battery_soc_hysteresis_pct)
            if cfg.battery is not None
            else None
        )
        self.allocator = Allocator(cfg.miners, c.on_hysteresis_w, c.on_delay_s, c.off_delay_s,
                                   c.start_horizon_s)
        self._tank_miners = frozenset(m.name for m in cfg.miners if m.heats_tank)
        # What a kWh through each miner is worth (BTC; plus displaced backup heat when the
        # tank wants heat), most efficient first: below that import price, buying pays.
        # The terms are an input of each step (`Measurements.btc_terms`); None: these.
        self.static_terms = config_terms(cfg.bitcoin)
        self.terms: BtcTerms = self.static_terms
        self.worth = self._worth(self.terms)
        self.supervisor = Supervisor(cfg, self.worth)
        # Constants of the site, derived once (the step runs every second for years).
        self._import_limit_w = cfg.site.import_limit_w
        self._miner_import_limit_w = self._import_limit_w - c.import_headroom_w
        self._export_setpoint_w = -c.export_margin_w
        if cfg.tank is not None:
            self._tank_ceiling_c = cfg.tank.max_c - c.tank_max_margin_c
            self._tank_j_per_k = cfg.tank.heat_capacity_j_per_k / cfg.tank.miner_heat_fraction
        # Island: the battery is the only source besides PV; miners must leave it this
        # much of its discharge power so they never make it drop the house.
        self._battery_empty_soc = (
            cfg.battery.min_soc_pct + 0.5 if cfg.battery is not None else math.inf
        )
        self._island_discharge_w = (
            cfg.battery.max_discharge_w - c.import_headroom_w if cfg.battery is not None
            else 0.0
        )
        self._last_now: float | None = None
        # Per miner: the two latest readbacks (t_prev, t_last, p_prev, p_last).
        self._readbacks: dict[str, tuple[float, float, float, float]] = {}
        # Per stopped miner: since when it has been told to be off (the first tick that
        # found it stopped in the allocator's state).
        self._told_off_at: dict[str, float] = {}
        self._mode = c.mode
        self._stale_s = c.stale_timeout_s
        self._heat_band_c = c.price_heat_band_c
        self._on_hysteresis_w = c.on_hysteresis_w
        self._export_margin_w = c.export_margin_w
        self._tank_target_c = cfg.tank.target_c if cfg.tank is not None else math.inf
        self._tank_max_c = cfg.tank.max_c if cfg.tank is not None else math.inf
        self._wants_heat = False
        self._worth_terms: BtcTerms = self.terms
        self.debug: StepDebug | None = None

    def _miners_at(self, readings: dict[str, MinerReading], t_s: float,
                   actual: dict[str, float], stale_s: float, now: float,
                   ignoring: Mapping[str, float]) -> float:
        """The miners' total power at time `t_s`, from each readback moved along the ramp
        toward its last target (forward) or taken from the readback before (backward).
        A miner in `ignoring` does not follow its commands: its readback is held."""
        total = 0.0
        hist = self._readbacks
        specs = self.allocator.specs
        for name, st in self.allocator.state.items():
            r = readings.get(name)
            if r is None or now - r.at_s > stale_s:
                total += actual[name]
                continue
            at = r.at_s
            h = hist.get(name)
            if h is None:
                h = hist[name] = (at, at, r.power_w, r.power_w)
            elif h[1] != at:
                h = hist[name] = (h[1], at, h[3], r.power_w)
            t0, t1, p0, p1 = h
            if name in ignoring:
                p = p1
            elif t_s >= t1:
                # Forward: no faster than the ramp, not before its boot is over, no further
                # than the target.
                sp = specs[name]
                running = st.running
                boot_end = st.switched_at_s + sp.restart_s if running else t1
                reach = sp.ramp_w_per_s * max(t_s - max(t1, boot_end), 0.0)
                target = st.target_w if running else 0.0
                p = min(p1 + reach, target) if target > p1 else max(p1 - reach, target)
            elif t_s <= t0 or t1 <= t0:
                p = p0
            else:
                p = p0 + (p1 - p0) * (t_s - t0) / (t1 - t0)
            total += p
        return total

    def _worth(self, terms: BtcTerms) -> Worth:
        cfg = self.cfg
        warm, cold = site_break_even(cfg, terms, True), site_break_even(cfg, terms, False)
        # Per miner (cold, warm) value per kWh: the numbers an `export_pays` reason gives.
        self._worth_by_name = {name: (float(cold[name].total_per_kwh),
                                      float(warm[name].total_per_kwh)) for name in cold}
        return Worth([
            (m.max_power_w, *self._worth_by_name[m.name]) for m in self.allocator.miners
        ])

    def _use_terms(self, terms: BtcTerms) -> None:
        """New bitcoin terms: re-derive what each miner's kWh is worth (rare: daily in a
        simulated trace, each feed update on a live site)."""
        self.terms = terms
        if terms != self._worth_terms:
            self._worth_terms = terms
            self.worth = self._worth(terms)
            self.supervisor.set_worth(self.worth)

    def _ignoring_stop(self, readings: dict[str, MinerReading], now: float,
                       stale_s: float) -> dict[str, float]:
        """Miners told to stop that still draw power past their stop time (a firmware that
        accepts the pause and keeps hashing): name -> the power their readback shows.

        The allocator can no longer shed them, so what they draw is load like the
        house's: it comes off every cap and budget the other miners share. Judged from a
        fresh readback taken at least `stop_s` + one tick after the stop was decided, so
        a miner that is still winding down is not counted (that would shed the others
        for a stop in progress)."""
        told = self._told_off_at
        out: dict[str, float] = {}
        for name, st in self.allocator.state.items():
            if st.running:
                told.pop(name, None)
                continue
            since = told.setdefault(name, now)
            r = readings.get(name)
            if r is None or now - r.at_s > stale_s:
                continue
            sp = self.allocator.specs[name]
            if r.at_s >= since + sp.stop_s + self.tick_s and r.power_w > sp.idle_power_w:
                out[name] = r.power_w
        return out

    def _export_pays(self, commands: tuple[MinerCommand, ...], export_price: float | None,
                     wants_heat: bool) -> tuple[MinerCommand, ...]:
        """Miners held off by the export rule (surplus_policy = "value") say so with the
        two numbers people compare: what a kWh earns through the miner, what export pays."""
        out = []
        margin = self.cfg.control.price_hysteresis_per_kwh
        for cmd in commands:
            if cmd.reason == "no_room":
                cold, warm = self._worth_by_name[cmd.name]
                worth = warm if wants_heat and cmd.name in self._tank_miners else cold
                if export_price is not None and worth < export_price + margin:
                    cmd = cmd._replace(reason="export_pays", reason_worth_per_kwh=worth,
                                       reason_price_per_kwh=export_price)
                else:
                    cmd = cmd._replace(reason="not_enough_surplus")
            out.append(cmd)
        return tuple(out)

    def worth_buying_w(self, import_price_per_kwh: float, tank_wants_heat: bool) -> float:
        """Miner power worth buying from the grid at this price: the miners whose value per
        kWh is above it. Any miner is worth running at a price <= 0."""
        return self.worth.power_w(import_price_per_kwh, tank_wants_heat)

    def step(self, m: Measurements, now: float, o: Overrides = NO_OVERRIDES) -> Commands:
        mode = o.mode if o.mode is not None else self._mode
        island = mode is _ISLAND
        last = self._last_now
        dt = self.tick_s if last is None or now <= last else now - last
        self._last_now = now
        stale_s = self._stale_s
        trips: list[Trip] = []
        bt = m.btc_terms
        if bt is None:
            bt = self.static_terms
        if bt is not self.terms:
            self._use_terms(bt)
        allocator = self.allocator

        # What the miners draw now: fresh readback, else what we last asked of them.
        actual: dict[str, float] = {}
        seen_running: dict[str, bool] | None = None  # miners stopped, not yet seen stopped
        # The readbacks as a dict (what every caller passes; a copy otherwise): a Mapping
        # is read through generic method calls, a dict directly when compiled.
        readings = m.miners if isinstance(m.miners, dict) else dict(m.miners)
        for name, st in allocator.state.items():
            r = readings.get(name)
            if r is not None and now - r.at_s <= stale_s:
                actual[name] = r.power_w
                if not r.can_pause and name not in allocator.no_pause:
                    allocator.no_pause = allocator.no_pause | {name}
                if st.stop_unconfirmed and r.can_pause:
                    if seen_running is None:
                        seen_running = {}
                    seen_running[name] = r.running
            else:
                actual[name] = st.target_w
        actual_total = sum(actual.values())
        ignoring = self._ignoring_stop(readings, now, stale_s)

        # 1. Hard limits.
        caps: list[tuple[float, str]] = []
        process_w = 0.0
        if island:
            meter_ok = True  # no grid: the battery is what the miners are judged by
        else:
            grid_age = _age(m.grid_power_w, now)
            meter_ok = m.grid_power_w is not None and grid_age <= stale_s
            if not meter_ok:
                trips.append(Trip(
                    "stale_meter",
                    "no grid meter reading" if m.grid_power_w is None else
                    f"no fresh grid meter reading for {grid_age:.0f} s (limit {stale_s:.0f} s): "
                    "miners ramp to zero",
                ))
                caps.append((0.0, "stale_meter"))
            else:
                assert m.grid_power_w is not None
                grid_w = m.grid_power_w.value
                limit = self._miner_import_limit_w
                # The house's own load is the meter less the miners *at the moment the
                # meter sampled*: readbacks taken at another moment (a ramping miner seen
                # by the meter before its own readback) would make the load estimate jump
                # and the cap with it, stopping a miner right after each start.
                at_meter = self._miners_at(readings, m.grid_power_w.at_s, actual, stale_s,
                                           now, ignoring)
                caps.append((limit - grid_w + at_meter, "import_limit"))
                if grid_w > limit:
                    trips.append(Trip(
                        "import_limit",
                        f"grid import {grid_w:.0f} W above the miners' limit {limit:.0f} W "
                        f"(import limit {self._import_limit_w:.0f} W − headroom): shedding",
                    ))
                process_w = grid_w
        dr_cap = m.dr_limit_w
        if o.dr_cap_w is not None:
            dr_cap = o.dr_cap_w if dr_cap is None else min(dr_cap, o.dr_cap_w)
        if dr_cap is not None:
            caps.append((dr_cap, "dr_cap"))
            if actual_total > dr_cap + 1.0:
                trips.append(Trip(
                    "dr_cap",
                    f"demand-response cap {dr_cap:.0f} W below miner power "
                    f"{actual_total:.0f} W: shedding",
                ))
        if o.hold_reason is not None:
            caps.append((0.0, "hold"))
            trips.append(Trip("hold", f"miners held off: {o.hold_reason}"))

        policy = "none"
        if self.battery is not None:
            bat, soc = m.battery_power_w, m.soc_pct
            if bat is None or soc is None or max(now - bat.at_s, now - soc.at_s) > stale_s:
                trips.append(Trip(
                    "stale_battery",
                    "no fresh battery reading: miners ramp to zero (cannot protect the reserve)",
                ))
                caps.append((0.0, "stale_battery"))
                meter_ok = meter_ok and not island
            else:
                if island:
                    # The battery is the grid: regulate its power (discharge counts as
                    # import), and never let the miners push it past its discharge limit.
                    policy = "island"
                    process_w = -bat.value
                    room = self._island_discharge_w + bat.value
                    caps.append((actual_total + room, "battery_discharge"))
                    if room < 0:
                        trips.append(Trip(
                            "battery_discharge",
                            f"battery discharging {-bat.value:.0f} W, near its limit "
                            f"{self.battery.cfg.max_discharge_w:.0f} W − headroom: shedding",
                        ))
                    # Every Wh the miners take from an island battery may be missing to
                    # the house tonight: they may only draw the probe, and only while it
                    # is full. More than that is shed at once.
                    band = self.supervisor.island
                    allowed = 2.0 * band.probe_w if band is not None and band.full else 0.0
                    if bat.value < -allowed and actual_total > 0:
                        cap = max(actual_total + bat.value + allowed, 0.0)
                        caps.append((cap, "island_battery"))
                        if cap < actual_total - 1.0:
                            trips.append(Trip(
                                "island_battery",
                                f"island battery discharging {-bat.value:.0f} W with the "
                                f"miners at {actual_total:.0f} W: shedding (the battery "
                                "is the house's, not the miners')",
                            ))
                else:
                    policy = _POLICY_VALUE[self.battery.update(soc.value)]
                    process_w = self.battery.process_value_w(process_w, bat.value)
                rc = self.battery.reserve_cap_w(soc.value, bat.value, actual_total)
                if rc is not None:
                    caps.append((rc, "battery_reserve"))
                    if rc < actual_total - 1.0:
                        trips.append(Trip(
                            "battery_reserve",
                            f"battery at {soc.value:.1f}% (reserve "
                            f"{self.battery.cfg.reserve_soc_pct:.0f}%) discharging "
                            f"{-bat.value:.0f} W into the miners: shedding",
                        ))
        elif island:
            trips.append(Trip("no_battery", "island mode without a battery: miners stay off"))
            caps.append((0.0, "no_battery"))
            meter_ok = False

        # Tank state the supervisor and the tank loop share.
        t = m.tank_temp_c
        tank_fresh = t is not None and now - t.at_s <= stale_s
        tank_setpoint = math.inf
        tank_loop = self.tank_loop
        if tank_loop is not None:
            tank_setpoint = min(self._tank_target_c if o is NO_OVERRIDES
                                else o.effective_tank_target_c(self._tank_target_c),
                                self._tank_ceiling_c)
        # The tank wants heat (its heat counts in the price rules) once it is a band below
        # its setpoint, until it is back at it: a price decision does not flip every time
        # the tank loop holds the tank around its target.
        if t is None or not tank_fresh:
            wants_heat = False
        elif self._wants_heat:
            wants_heat = t.value < tank_setpoint
        else:
            wants_heat = t.value < tank_setpoint - self._heat_band_c
        self._wants_heat = wants_heat

        # 3. The supervisor: setpoint, floor, price cap, schedule.
        d = self.supervisor.decide(mode, m, now, o, wants_heat, actual_total, process_w)
        if d.hard_cap_w != math.inf:
            caps.append((d.hard_cap_w, d.hard_reason))
            if actual_total > d.hard_cap_w + 1.0:
                trips.append(Trip(d.hard_reason, f"{d.hard_detail}: shedding"))

        hard_cap = self.capacity_w
        for cap, _why in caps:
            if cap < hard_cap:
                hard_cap = cap
        hard_cap = max(hard_cap, 0.0)

        hard_tank_cap = math.inf
        tank_loop_w = math.inf
        tank_limiter = "tank"
        if tank_loop is not None:
            ceiling = self._tank_ceiling_c
            if t is None or not tank_fresh:
                trips.append(Trip("stale_tank", "no fresh tank temperature: tank miners stop"))
                hard_tank_cap = 0.0
                tank_limiter = "stale_tank"
            elif t.value >= ceiling:
                trips.append(Trip(
                    "tank_max",
                    f"tank at {t.value:.1f} °C, at or above {ceiling:.1f} °C "
                    f"(max {self._tank_max_c:.0f} °C − margin): tank miners stop",
                ))
                hard_tank_cap = 0.0
                tank_limiter = "tank_max"
            else:
                # Look one tick ahead: the heat the miners add must not carry the tank past
                # the ceiling before the next reading (losses only help, demand ignored).
                per_tick_j = (ceiling - t.value) * self._tank_j_per_k
                hard_tank_cap = per_tick_j / (dt if dt > self.tick_s else self.tick_s)
                tank_loop.setpoint_c = tank_setpoint
                tank_loop_w = tank_loop.update(t.value, dt)

        # 4. Loops and selector.
        loop_label = d.loop_reason
        if not meter_ok:
            grid_loop_w = 0.0
            available = 0.0
        else:
            gl = self.grid_loop
            if gl.setpoint_w != d.setpoint_w:
                gl.setpoint_w = d.setpoint_w
            grid_loop_w = gl.update(process_w, actual_total, dt)
            available = actual_total + (d.setpoint_w - process_w)
            if d.setpoint_w == self._export_setpoint_w:
                # The export margin is where the loop regulates within a running set's
                # range, not a condition for running: a set whose minimums fit under the
                # surplus itself imports nothing at its minimums.
                available += self._export_margin_w
            if d.try_start_w > 0 and available < actual_total + d.try_start_w:
                available = actual_total + d.try_start_w  # island: is curtailed PV there?
            # A floor on the miners' total that may be bought from the grid: the day-ahead
            # plan's, else the price rule's (heating: the tank's, below its price cap); a
            # DR absorb request raises it. Hard caps still bind.
            floor_w = d.floor_w
            bat, soc = m.battery_power_w, m.soc_pct
            # Heating mode is tank first: the battery may feed the miners (down to its
            # reserve, a hard limit); grid mode never buys out of the battery.
            protect = mode is not _HEATING and policy != "drain"
            covers = (protect and policy in _SELF_CONSUMPTION and bat is not None
                      and soc is not None and soc.value > self._battery_empty_soc)
            if covers and floor_w > grid_loop_w:
                # A self-consumption battery that still holds energy covers any import
                # first: what the miners could buy is what it is charging, no more (else
                # they start, it discharges into them, they are shed: a start a minute).
                assert bat is not None
                floor_w = min(floor_w, actual_total + max(bat.value, 0.0))
                loop_label = "battery_while_buying"
            if floor_w > grid_loop_w:
                grid_loop_w = floor_w
                # A price is not a noisy surplus: the start hysteresis need not be met.
                available = max(available, floor_w + self._on_hysteresis_w)
                loop_label = d.floor_reason
                if protect and bat is not None and bat.value < 0:
                    # Buying must never turn into draining the battery.
                    caps.append((max(actual_total + bat.value, 0.0), "battery_while_buying"))
                    hard_cap = min(hard_cap, caps[-1][0])
            # A price decision lowers the miners, but within their minimum on-times.
            if d.soft_cap_w < grid_loop_w:
                grid_loop_w = d.soft_cap_w
                loop_label = d.soft_reason
            if d.soft_cap_w + self._on_hysteresis_w < available:
                # A decided bound, not a noisy surplus: the miners that fit under it may
                # start (the start hysteresis is not asked of them).
                available = d.soft_cap_w + self._on_hysteresis_w

        # Hard limits first: on a tie (a stale meter gives cap 0 and a grid loop of 0) the
        # limit, not the loop, is what people need to see.
        limiter, low = tank_limiter, math.inf
        for cap, why in caps:
            if cap < low:
                limiter, low = why, cap
        if hard_tank_cap < low:
            limiter, low = tank_limiter, hard_tank_cap
        if tank_loop_w < low:
            limiter, low = tank_limiter, tank_loop_w
        if grid_loop_w < low:
            limiter = loop_label
        # A miner without room is held off by whatever set the budget: say which.
        why = "not_enough_surplus" if limiter in ("grid", "island") else limiter
        export_pays = why == "export_price"  # those miners then say what each kWh is worth

        # A miner that ignores its stop is load the allocator cannot shed: the others
        # share what is left after it, under every cap: its power is not theirs.
        ignored_w = ignored_tank_w = 0.0
        for name, w in ignoring.items():
            ignored_w += w
            if name in self._tank_miners:
                ignored_tank_w += w
            trips.append(Trip(
                "miner_ignores_stop",
                f"miner {name} still draws {w:.0f} W after it was told to stop: counted "
                "as load the other miners cannot take", miner=name))
        budgets = Budgets(
            available - ignored_w, grid_loop_w - ignored_w, tank_loop_w - ignored_tank_w,
            max(hard_cap - ignored_w, 0.0), max(hard_tank_cap - ignored_tank_w, 0.0))
        alloc = allocator.allocate(budgets, actual, now, self.tick_s, o.manual_w,
                                   seen_running, "no_room" if export_pays else why)
        applied_tank = total = 0.0
        tank_miners = self._tank_miners
        for cmd in alloc.commands:
            total += cmd.power_target_w
            if cmd.name in tank_miners:
                applied_tank += cmd.power_target_w
        if tank_loop is not None and not (
                tank_loop_w < min(grid_loop_w, hard_cap, hard_tank_cap)):  # not binding
            tank_loop.track(applied_tank)
        for name in alloc.forced_off:
            trips.append(Trip("forced_off", f"miner {name} stopped by a hard limit "
                                            "(minimum on-time overridden)", miner=name))
        self.debug = StepDebug(dt, process_w, grid_loop_w, tank_loop_w, available, hard_cap,
                               hard_tank_cap, actual_total, policy, limiter)
        commands = alloc.commands
        if export_pays and any(cmd.reason == "no_room" for cmd in commands):
            commands = self._export_pays(commands, m.export_price_per_kwh, wants_heat)
        return new_commands(commands, total, _MODE_VALUE[mode], limiter, tuple(trips))
