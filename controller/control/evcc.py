"""An evcc-style peer: evcc's PV ("Solar") mode re-implemented for miners, in the same plant.

Hearth has to track surplus at least as well as the rule most solar homes already run, so
`hearth sim/compare --controller evcc` runs that rule against the same plant, miners and
trace. Each miner is one evcc loadpoint whose charger is evcc's `heatpump` type (a
modulating heater with a settable power, features Continuous, Heating, IntegratedDevice;
charger/heatpump.go): power target = the charger's max power, readback = its meter. The
rules, each from evcc's code (github.com/evcc-io/evcc, core/) or documentation
(docs.evcc.io, en/reference/configuration/...):

1. **Control cycle.** Every `interval` (default here 30 s, the value the docs recommend;
   reference/configuration/interval) the site reads its meters and updates *one* loadpoint,
   the next in configuration order (site.go `Site.Run` + `loopLoadpoints`: one
   `site.update(lp)` per tick; evcc discussion #36388 shows the effect with 16 loadpoints).
   Between cycles the last commands hold. `round_robin=False` instead updates every
   loadpoint each cycle (an evcc with N loadpoints at interval/N, which evcc warns about
   below 30 s; the stronger variant, used by `--controller evcc-all`). When one sim step
   spans several cycles (1-min traces), they run on the same snapshot, each later one
   seeing the site power as if the earlier ones' new targets were already drawn.
2. **Site power** (site.go `sitePower`): grid power (import +) + battery power (evcc's
   sign: discharge +) + `residualPower` − flexible power of lower-priority loadpoints.
   `residualPower` defaults to 0 W (reference/configuration/site, `residualPower`); with a
   battery below `prioritySoc` and residual ≤ 0 it is taken as 100 W, and battery
   charging below `prioritySoc` is not counted as surplus (the battery has priority).
   evcc's `prioritySoc` is Hearth's `battery.priority_soc_pct`; evcc's `bufferSoc` is
   `battery.miners_may_discharge_above_soc_pct` (when set): above it an enabled loadpoint
   short of surplus is kept at its minimum from the battery (`pvMaxCurrent`, first test).
3. **Target power** (loadpoint.go `pvMaxCurrent`, in watts): for an IntegratedDevice
   ("slow-acting heating devices, only take actually consumed power into account") the
   effective power is the *measured* power, so target = max(measured − site power, 0).
4. **Enable** (`pvMaxCurrent`, disabled branch; reference/configuration/loadpoints
   `enable`): with the enable threshold at its default 0, when target ≥ the miner's minimum
   (surplus covers it) the PV timer starts; once it has run `enable.delay` (default 1 min)
   the loadpoint is enabled at its minimum. A cycle without enough surplus resets it.
5. **Disable** (`pvMaxCurrent`, enabled branch; `disable`): while enabled and target <
   minimum, the loadpoint is held at its minimum; if also site power ≥ the disable
   threshold (default 0: importing), the PV timer runs, and after `disable.delay` (default
   3 min) the loadpoint is disabled (0 W). Otherwise the timer is reset.
6. **Modulation**: enabled with target ≥ minimum: the timer is reset and the power target
   is min(target, maximum) (`pvMaxCurrent`; `setLimit` turns current into power).
7. **Priority** (reference/configuration/loadpoints `priority`; prioritizer.go
   `GetChargePowerFlexibility`; loadpoint_api.go `GetChargePowerFlexibility`): a loadpoint
   sees the power of every enabled PV loadpoint of *lower* priority as available
   (subtracted from its site power), so it grows at their expense and they then back off.
   Lower-priority loadpoints add the maximum power of higher-priority ones whose enable
   timer runs (site.go `reservedPVPower`), so they do not start on the same watts. "Most
   efficient first" is expressed through evcc's own mechanism: priority by efficiency
   (lowest best J/TH highest; equal efficiency, equal priority).
8. **Temperature limit** (loadpoint.go `Update`: `LimitSocReached` → `disableUnlessClimater`
   → 0 at once): for a tank-heating miner the tank temperature is the device's "SoC" and
   its limit Hearth's `tank.max_c − control.tank_max_margin_c`.
9. **No meter, no cycle** (site.go `update`: a `sitePower` error skips the loadpoint
   update): without a grid reading the commands hold.

Like evcc it knows nothing of the miners' minimum on/off times, boot times or import
limits (evcc's circuits are not modelled): the summary counts its min on/off violations.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.config.models import SiteConfig
from controller.control.types import Commands, Measurements, MinerCommand, Trip

# evcc's defaults (core/loadpoint.go NewLoadpoint, docs reference/configuration/...).
INTERVAL_S = 30.0
ENABLE_DELAY_S = 60.0
DISABLE_DELAY_S = 180.0
BATTERY_PRIORITY_RESIDUAL_W = 100.0  # site.go sitePower: "ensure safe default"


@dataclass
class Loadpoint:
    """One miner as evcc sees it: enabled flag, offered power, the shared PV timer."""

    name: str
    min_w: float
    max_w: float
    priority: int
    heats_tank: bool
    enabled: bool = False
    offered_w: float = 0.0  # the power target last set (0 when disabled)
    pv_timer_s: float | None = None  # evcc's lp.pvTimer; None = zero (inactive)

    @property
    def starting(self) -> bool:
        """evcc's `PvChargeStarting`: enable timer running, not enabled yet."""
        return not self.enabled and self.pv_timer_s is not None


class EvccController:
    name = "evcc"

    def __init__(
        self,
        cfg: SiteConfig,
        *,
        round_robin: bool = True,
        interval_s: float = INTERVAL_S,
        enable_delay_s: float = ENABLE_DELAY_S,
        disable_delay_s: float = DISABLE_DELAY_S,
        enable_threshold_w: float = 0.0,
        disable_threshold_w: float = 0.0,
        residual_power_w: float = 0.0,
    ) -> None:
        self.cfg = cfg
        self.round_robin = round_robin
        self.interval_s = interval_s
        self.enable_delay_s = enable_delay_s
        self.disable_delay_s = disable_delay_s
        self.enable_threshold_w = enable_threshold_w
        self.disable_threshold_w = disable_threshold_w
        self.residual_power_w = residual_power_w
        # Priority by efficiency: each distinct best J/TH is a level, most efficient highest.
        levels = sorted({m.best_j_per_th for m in cfg.miners}, reverse=True)
        self.loadpoints = [
            Loadpoint(m.name, m.min_power_w, m.max_power_w, levels.index(m.best_j_per_th),
                      m.heats_tank)
            for m in cfg.miners
        ]
        self._next_lp = 0  # round robin position (configuration order)
        self._next_cycle_s: float | None = None
        self.cycles = 0
        self._tank_limit_c = (cfg.tank.max_c - cfg.control.tank_max_margin_c
                              if cfg.tank is not None else None)

    # -- the site loop --------------------------------------------------------------------

    def step(self, m: Measurements, now: float) -> Commands:
        trips: list[Trip] = []
        tank_hot = (self._tank_limit_c is not None and m.tank_temp_c is not None
                    and m.tank_temp_c.value >= self._tank_limit_c)
        if tank_hot:
            trips.append(Trip("tank_max", "tank temperature limit reached (evcc limitSoc)"))
        if self._next_cycle_s is None:
            self._next_cycle_s = now  # evcc: "start immediately"
        due = 0
        while self._next_cycle_s <= now + 1e-9:
            due += 1
            self._next_cycle_s += self.interval_s
        # Cycles due on one snapshot: round robin updates that many loadpoints (each at
        # most once); every-loadpoint mode updates each loadpoint once.
        updates = min(due, len(self.loadpoints)) if self.round_robin else min(due, 1)
        if updates and m.grid_power_w is not None:
            self._cycle(m, now, updates, tank_hot)
        cmds = tuple(MinerCommand(lp.name, lp.enabled, lp.offered_w if lp.enabled else 0.0)
                     for lp in self.loadpoints)
        return Commands(cmds, sum(c.power_target_w for c in cmds), "evcc", "evcc",
                        tuple(trips))

    def _cycle(self, m: Measurements, now: float, updates: int, tank_hot: bool) -> None:
        assert m.grid_power_w is not None
        measured = {lp.name: (r.power_w if (r := m.miners.get(lp.name)) is not None else 0.0)
                    for lp in self.loadpoints}
        expected = dict(measured)  # as the meters would read once earlier updates took hold
        site_w = m.grid_power_w.value + self._battery_and_residual_w(m)
        buffered = self._buffered(m)
        if self.round_robin:
            order = []
            for _ in range(updates):
                order.append(self.loadpoints[self._next_lp])
                self._next_lp = (self._next_lp + 1) % len(self.loadpoints)
        else:  # every loadpoint, highest priority first
            order = sorted(self.loadpoints, key=lambda lp: -lp.priority) * updates
        for lp in order:
            self.cycles += 1
            seen_w = site_w + sum(expected.values()) - sum(measured.values())
            flexible = sum(expected[o.name] for o in self.loadpoints
                           if o.priority < lp.priority and o.enabled)
            reserved = sum(o.max_w for o in self.loadpoints
                           if o.priority > lp.priority and o.starting)
            if tank_hot and lp.heats_tank:
                target = 0.0  # LimitSocReached: disabled at once
            else:
                target = self._pv_target_w(lp, seen_w - flexible + reserved,
                                           expected[lp.name], now, buffered)
            self._set_limit(lp, target)
            expected[lp.name] = lp.offered_w if lp.enabled else 0.0

    def _battery_and_residual_w(self, m: Measurements) -> float:
        """site.go `sitePower` without the grid: battery (discharge +) and residual power."""
        residual = self.residual_power_w
        bat = self.cfg.battery
        if bat is None or m.battery_power_w is None or m.soc_pct is None:
            return residual
        discharge_w = -m.battery_power_w.value  # Hearth: charge +; evcc: discharge +
        soc = m.soc_pct.value
        if soc < bat.priority_soc_pct:
            if residual <= 0:
                residual = BATTERY_PRIORITY_RESIDUAL_W
            if discharge_w < 0:  # charging below prioritySoc: the battery has priority
                discharge_w = 0.0
        return discharge_w + residual

    def _buffered(self, m: Measurements) -> bool:
        """evcc's `batteryBuffered`: SoC above `bufferSoc` (Hearth's discharge threshold)."""
        bat = self.cfg.battery
        return (bat is not None and bat.miners_may_discharge_above_soc_pct is not None
                and m.soc_pct is not None
                and m.soc_pct.value > bat.miners_may_discharge_above_soc_pct)

    # -- one loadpoint: pvMaxCurrent in watts ---------------------------------------------

    def _pv_target_w(self, lp: Loadpoint, site_w: float, effective_w: float,
                     now: float, buffered: bool) -> float:
        target = max(effective_w - site_w, 0.0)
        if buffered and lp.enabled and target < lp.min_w:
            return lp.min_w  # battery-supported: kept at its minimum, no disable timer
        if lp.enabled and target < lp.min_w:
            if site_w >= self.disable_threshold_w:
                if lp.pv_timer_s is None:
                    lp.pv_timer_s = now
                if now - lp.pv_timer_s >= self.disable_delay_s - 1e-9:
                    lp.pv_timer_s = None
                    return 0.0
            else:
                lp.pv_timer_s = None
            return lp.min_w
        if not lp.enabled:
            if ((self.enable_threshold_w == 0 and target >= lp.min_w)
                    or (self.enable_threshold_w != 0 and site_w <= self.enable_threshold_w)):
                if lp.pv_timer_s is None:
                    lp.pv_timer_s = now
                if now - lp.pv_timer_s >= self.enable_delay_s - 1e-9:
                    lp.pv_timer_s = None
                    return lp.min_w
            else:
                lp.pv_timer_s = None
            return 0.0
        lp.pv_timer_s = None
        return min(target, lp.max_w)

    @staticmethod
    def _set_limit(lp: Loadpoint, target_w: float) -> None:
        """loadpoint.go `setLimit`: enabled exactly when the target reaches the minimum."""
        lp.enabled = target_w >= lp.min_w
        lp.offered_w = target_w if lp.enabled else 0.0
