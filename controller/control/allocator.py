"""Split a total power across miners: efficiency order, ranges, steps, on/off timing.

Two budgets come in. `available_w` is the best estimate of what the miners could take in
steady state; it decides which miners should run (with hysteresis and delays, because a
start costs minutes of boot and a restart wears relays and hashboards). `target_w` is what
the loops want right now; it is spread over the running miners, most efficient first.
Hard caps come separately: when measured power exceeds one, the allocator sheds at once,
overriding minimum on-times, pausing miners whose ramp is too slow to get under the cap
within one tick. Every on/off decision is stamped so minimum on/off times can be proven.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from controller.config.models import Actuation, MinerConfig
from controller.control.types import MinerCommand, new_command


@dataclass(init=False)
class MinerState:
    """What the allocator remembers about one miner between ticks (its own `__init__`:
    see `Budgets`)."""

    running: bool = False
    switched_at_s: float = -math.inf  # when `running` last changed
    target_w: float = 0.0  # last target sent
    want_on_since_s: float | None = None  # enough power to start, since
    want_off_since_s: float | None = None  # too little power to keep running, since
    # Stopped by us and not yet seen stopped: until its readback shows it off, its off
    # time has not begun (`switched_at_s` is then the first readback showing it stopped).
    stop_unconfirmed: bool = False

    def __init__(self, running: bool = False, switched_at_s: float = -math.inf,
                 target_w: float = 0.0, want_on_since_s: float | None = None,
                 want_off_since_s: float | None = None, stop_unconfirmed: bool = False) -> None:
        self.running = running
        self.switched_at_s = switched_at_s
        self.target_w = target_w
        self.want_on_since_s = want_on_since_s
        self.want_off_since_s = want_off_since_s
        self.stop_unconfirmed = stop_unconfirmed


# Watts a set spends beyond what the site's best miner would need for the same hash rate
# count against it at this weight. An S9 (84 J/TH) wastes two thirds of its power by that
# measure beside an S19 (29 J/TH): at 0.3, two S9s absorbing 2.5 kW give way to an idle S19
# absorbing as much (its start penalty included), while miners of equal efficiency are
# chosen on captured watts and start penalty alone. At an effective 0.1 the S9s kept running
# and the dev year's BTC came out 7 % below the evcc-style rule's at equal capture.
_EFFICIENCY_WEIGHT = 0.3
_NO_MINERS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MinerSpec:
    """The facts about one miner that a tick reads (the allocator's and the controller's),
    copied from its config once.

    A config model's attribute goes through pydantic's `__getattr__` hook on every read
    (a quarter of a compiled step went there); these are plain attributes, and fields of
    a C struct when the control core runs compiled (`controller/native.py`)."""

    name: str
    min_power_w: float
    max_power_w: float
    heats_tank: bool
    min_on_s: float
    min_off_s: float
    ramp_w_per_s: float
    restart_s: float
    stop_s: float
    idle_power_w: float

    @staticmethod
    def of(m: MinerConfig) -> MinerSpec:
        return MinerSpec(m.name, m.min_power_w, m.max_power_w, m.heats_tank, m.min_on_s,
                         m.min_off_s, m.ramp_w_per_s, m.restart_s, m.stop_s, m.idle_power_w)


@dataclass(frozen=True)
class _Kind:
    """Miners that are interchangeable for the on/off choice (same model and settings)."""

    cfg: MinerConfig
    min_on_s: float
    min_w: float
    max_w: float
    ths_per_w: float
    start_penalty_w: float


class _Combo(NamedTuple):
    """One choice of how many miners of each kind run, and what it needs and gives."""

    counts: tuple[int, ...]
    lo_w: float  # summed minimums (not heating the tank)
    hi_w: float
    lo_tank_w: float  # the same for the tank-heating miners
    hi_tank_w: float
    starts_w: float  # start penalty of the miners it would start
    new: bool  # it starts a miner
    base: bool  # exactly the miners that must run
    base_ths: float  # hash rate with every member at its minimum
    fill: tuple[tuple[float, float], ...]  # (room above minimum W, TH/s per W), best first


# Records built every tick and then only read. A dataclass with its own `__init__`: compiled
# (`controller/native.py`) it is a C struct built by C code, about ten times cheaper than a
# NamedTuple (whose `__new__` is Python code) or a dataclass's generated `__init__` (also
# Python code, even in a compiled module); interpreted it costs about what a NamedTuple does.
@dataclass(init=False)
class Budgets:
    available_w: float  # steady-state estimate, for on/off decisions
    target_w: float  # what the loops want now, spread over running miners
    tank_target_w: float  # cap on miners that heat the tank (soft)
    hard_cap_w: float  # never exceeded: import limit, DR cap, stale data
    hard_tank_cap_w: float  # never exceeded by tank-heating miners: tank max

    def __init__(self, available_w: float, target_w: float, tank_target_w: float,
                 hard_cap_w: float, hard_tank_cap_w: float) -> None:
        self.available_w = available_w
        self.target_w = target_w
        self.tank_target_w = tank_target_w
        self.hard_cap_w = hard_cap_w
        self.hard_tank_cap_w = hard_tank_cap_w


@dataclass(init=False)
class Allocation:
    commands: tuple[MinerCommand, ...]
    forced_off: tuple[str, ...]  # miners stopped by a hard cap, min_on_s overridden

    def __init__(self, commands: tuple[MinerCommand, ...], forced_off: tuple[str, ...]) -> None:
        self.commands = commands
        self.forced_off = forced_off


def _level_at_or_below(levels: Sequence[float], power_w: float) -> float:
    best = levels[0]
    for lv in levels:
        if lv <= power_w + 1e-9:
            best = lv
    return best


class Allocator:
    def __init__(
        self,
        miners: Sequence[MinerConfig],
        on_hysteresis_w: float,
        on_delay_s: float,
        off_delay_s: float,
        start_horizon_s: float = 900.0,
    ) -> None:
        # Most efficient first; ties keep configuration order.
        self.miners = sorted(miners, key=lambda m: m.best_j_per_th)
        self._config_order = [m.name for m in miners]
        self._by_name = {m.name: m for m in miners}
        self.state: dict[str, MinerState] = {m.name: MinerState() for m in miners}
        self._levels = {m.name: m.levels_w() for m in miners}
        # Per-tick lookups, derived once: the tank miners; per miner in configuration
        # order its name, config, state and the target resolution of a power-target miner.
        self.specs = spec = {m.name: MinerSpec.of(m) for m in miners}
        self._tank_members = [spec[m.name] for m in self.miners if m.heats_tank]
        self._specs = [spec[m.name] for m in self.miners]  # efficiency order
        self._ordered = [(spec[m.name], self.state[m.name]) for m in self.miners]
        self._commanded = [
            (m.name, spec[m.name], self.state[m.name],
             m.target_resolution_w if m.actuation is Actuation.POWER_TARGET else None)
            for m in miners
        ]
        self.on_hysteresis_w = on_hysteresis_w
        self.on_delay_s = on_delay_s
        self.off_delay_s = off_delay_s
        self._best_j_per_th = min((m.best_j_per_th for m in miners), default=1.0)
        # Miners whose firmware cannot pause (seen in their readback): held at their minimum.
        self.no_pause: frozenset[str] = frozenset()
        self._room_w = 0.0  # the last tick's steady-state budget (for the reasons)
        groups: dict[tuple[object, ...], list[MinerConfig]] = {}
        for m in self.miners:
            key = (m.actuation, m.min_power_w, m.max_power_w, m.heats_tank, m.restart_s,
                   m.min_on_s, m.min_off_s, tuple((p.power_w, p.j_per_th) for p in m.efficiency),
                   self._levels[m.name])
            groups.setdefault(key, []).append(m)
        self._combos: dict[tuple[tuple[int, int, int], ...], list[_Combo]] = {}
        self._smallest_start_w = min((m.min_power_w for m in miners), default=0.0) + on_hysteresis_w
        self._kinds: list[tuple[_Kind, list[str]]] = [
            (_Kind(ms[0], ms[0].min_on_s, ms[0].min_power_w, ms[0].max_power_w,
                   1.0 / ms[0].best_j_per_th,
                   ms[0].restart_s * ms[0].min_power_w / start_horizon_s),
             [m.name for m in ms])
            for ms in groups.values()
        ]

    # -- manual ---------------------------------------------------------------------------

    def _take_manual(self, b: Budgets, manual_w: Mapping[str, float], now: float) -> Budgets:
        """Switch pinned miners as asked (respecting min on/off) and remove their power
        from the automatic budgets."""
        used = used_tank = 0.0
        for name, w in manual_w.items():
            m = self._by_name.get(name)
            if m is None:
                continue
            st = self.state[name]
            want = w > 0
            held = m.min_on_s if st.running else m.min_off_s
            if want != st.running and now - st.switched_at_s >= held:
                self._switch(st, want, now)
            if st.running:
                used += w
                used_tank += w if m.heats_tank else 0.0
        return Budgets(
            available_w=b.available_w - used,
            target_w=b.target_w - used,
            tank_target_w=b.tank_target_w - used_tank,
            hard_cap_w=b.hard_cap_w,
            hard_tank_cap_w=b.hard_tank_cap_w,
        )

    # -- on/off ---------------------------------------------------------------------------

    def _decide_running(self, b: Budgets, now: float, pinned: Collection[str],
                        tick_s: float) -> None:
        """Which miners should run: the set that best absorbs the steady-state budget.

        Every tick the allocator scores the combinations of miners (identical miners
        grouped, so it is a count per kind, not 2^n subsets): watts absorbed within the
        miners' ranges, minus a start penalty (the surplus lost while a miner boots, spread
        over `start_horizon_s`), plus a tie-break on efficiency. A set whose minimums do
        not fit the budget is not wanted, unless the minimum on-times force it. A running
        miner is preferred over an equal one that would have to start, so two miners never
        swap for a few watts. The chosen set is then followed with the on/off delays (and
        the minimum on/off times): a miner wanted on for `on_delay_s` starts, one unwanted
        for `off_delay_s` stops.
        """
        budget = max(min(b.available_w, b.hard_cap_w), 0.0)
        tank_budget = max(min(b.tank_target_w, b.hard_tank_cap_w), 0.0)
        self._room_w = budget
        # Running miners are judged against the best set regardless of minimum on/off
        # times (their off delay runs while the minimum on-time holds them); stopped
        # miners against the best set given the miners that must stay on.
        held = idle = True  # any running miner held by its minimum on-time / any running
        no_pause = self.no_pause
        for m, st in self._ordered:
            if st.running and m.name not in no_pause and m.name not in pinned:
                idle = False
                if now - st.switched_at_s < m.min_on_s:
                    break
        else:
            held = False
        if idle and budget < self._smallest_start_w:
            # Nothing runs and nothing could start (a night): nothing to choose.
            keep = start = _NO_MINERS
        else:
            start = self._best_set(budget, tank_budget, now, pinned, honour_min_on=True)
            keep = (self._best_set(budget, tank_budget, now, pinned, honour_min_on=False)
                    if held else start)
        for m, st in self._ordered:
            if m.name in pinned:
                continue
            if m.name in no_pause:
                # A miner whose firmware cannot pause is held at its minimum when not
                # wanted: it never stops, so it never starts either.
                if not st.running:
                    self._switch(st, True, now)
                continue
            if st.running:
                want = m.name in keep
                st.want_on_since_s = None
                if want:
                    st.want_off_since_s = None
                    continue
                if st.want_off_since_s is None:
                    st.want_off_since_s = now
                # A delay that ends before the next tick has ended: a dip is not ridden
                # for a whole long tick, a start is not put off by one.
                if (now - st.want_off_since_s + tick_s > self.off_delay_s
                        and now - st.switched_at_s >= m.min_on_s):
                    self._switch(st, False, now)
            else:
                want = m.name in start
                st.want_off_since_s = None
                if not want:
                    st.want_on_since_s = None
                    continue
                if st.want_on_since_s is None:
                    st.want_on_since_s = now
                if (now - st.want_on_since_s + tick_s > self.on_delay_s
                        and now - st.switched_at_s >= m.min_off_s):
                    self._switch(st, True, now)

    def _best_set(self, budget: float, tank_budget: float, now: float,
                  pinned: Collection[str], honour_min_on: bool) -> frozenset[str]:
        # Per kind of miner: its members in preference order (running first, the fixed
        # ones before them, then the longest stopped) and how many are fixed on.
        kinds: list[tuple[list[str], int, int, int]] = []  # members, running, fixed, free
        for kind, names in self._kinds:
            free = [n for n in names if n not in pinned] if pinned else names
            if not free:
                kinds.append(([], 0, 0, 0))
                continue
            min_on_s = kind.min_on_s
            running: list[str] = []
            stopped: list[str] = []
            n_fixed = 0
            for n in free:
                st = self.state[n]
                if st.running:
                    if n in self.no_pause or (honour_min_on
                                              and now - st.switched_at_s < min_on_s):
                        running.insert(n_fixed, n)
                        n_fixed += 1
                    else:
                        running.append(n)
                else:
                    stopped.append(n)
            if len(stopped) > 1:
                stopped.sort(key=lambda n: self.state[n].switched_at_s)
            kinds.append((running + stopped, len(running), n_fixed, len(free)))
        key = tuple((k[1], k[2], k[3]) for k in kinds)
        combos = self._combos.get(key)
        if combos is None:
            if len(self._combos) > 256:
                self._combos.clear()
            combos = self._combos[key] = self._enumerate(key)
        hyst = self.on_hysteresis_w
        best_score = -math.inf
        best: tuple[int, ...] | None = None
        for c in combos:
            lo_all = c.lo_w + c.lo_tank_w
            over = max(lo_all - budget, 0.0) + max(c.lo_tank_w - tank_budget, 0.0)
            # A start must fit, with the hysteresis: starting into import never pays. A
            # running set whose minimums do not fit is not wanted either (its miners ride
            # the dip at their minimum for the off delay, then stop), unless it is the
            # set the minimum on-times force.
            if (over > 0.0 and not c.base) or (c.new and lo_all + hyst > budget):
                continue
            absorbed = min(budget, c.hi_w + min(c.hi_tank_w, max(tank_budget, c.lo_tank_w)))
            # Hash rate at the absorbed power, most efficient kinds filled first (as the
            # spread does), as watts at the site's best efficiency: what the set wastes
            # beyond that is counted against it (`_EFFICIENCY_WEIGHT`).
            extra = absorbed - lo_all
            ths = c.base_ths
            for room_w, ths_per_w in c.fill:
                if extra <= 0.0:
                    break
                add = room_w if room_w < extra else extra
                ths += add * ths_per_w
                extra -= add
            score = (absorbed - c.starts_w
                     - _EFFICIENCY_WEIGHT * (absorbed - ths * self._best_j_per_th))
            if score > best_score + 1e-9 or best is None:
                best_score, best = score, c.counts
        if best is None:
            return frozenset()
        return frozenset(n for (members, _r, _f, _n), c in zip(kinds, best, strict=True)
                         for n in members[:c])

    def _enumerate(self, key: tuple[tuple[int, int, int], ...]) -> list[_Combo]:
        """Every count per kind within [fixed on, free], with what it needs and gives.

        Depends only on how many miners of each kind run, are fixed and are free, which
        changes at switches: cached, so a tick only evaluates a handful of sums."""
        out: list[_Combo] = []
        counts = [k[1] for k in key]
        base = tuple(counts)
        while True:
            lo = hi = lo_t = hi_t = starts_w = base_ths = 0.0
            new = False
            fill: list[tuple[float, float]] = []
            for (kind, _names), (n_running, _fixed, _free), c in zip(
                    self._kinds, key, counts, strict=True):
                if not c:
                    continue
                if c > n_running:
                    new = True
                    starts_w += (c - n_running) * kind.start_penalty_w
                if kind.cfg.heats_tank:
                    lo_t += c * kind.min_w
                    hi_t += c * kind.max_w
                else:
                    lo += c * kind.min_w
                    hi += c * kind.max_w
                base_ths += c * kind.min_w * kind.ths_per_w
                fill.append((c * (kind.max_w - kind.min_w), kind.ths_per_w))
            out.append(_Combo(tuple(counts), lo, hi, lo_t, hi_t, starts_w, new,
                              tuple(counts) == base, base_ths, tuple(fill)))
            for j in range(len(key)):
                if counts[j] < key[j][2]:
                    counts[j] += 1
                    break
                counts[j] = key[j][1]
            else:
                break
        return out

    @staticmethod
    def _switch(st: MinerState, running: bool, now: float) -> None:
        st.running = running
        st.switched_at_s = now
        st.stop_unconfirmed = not running
        st.want_on_since_s = None
        st.want_off_since_s = None

    # -- targets --------------------------------------------------------------------------

    def _spread(self, b: Budgets, pinned: Mapping[str, float]) -> dict[str, float]:
        total_left = min(b.target_w, b.hard_cap_w)
        tank_left = min(b.tank_target_w, b.hard_tank_cap_w)
        out: dict[str, float] = {}
        # What the running miners after this one need at least: leave it to them, so the
        # spread adds up to the target instead of overshooting it by their minimums.
        rest_min = rest_min_t = 0.0
        for m, st in self._ordered:
            if st.running and m.name not in pinned:
                rest_min += m.min_power_w
                if m.heats_tank:
                    rest_min_t += m.min_power_w
        levels_of = self._levels
        for m, st in self._ordered:
            name = m.name
            if name in pinned:
                out[name] = pinned[name] if st.running else 0.0
                continue
            if not st.running:
                out[name] = 0.0
                continue
            lo, hi = m.min_power_w, m.max_power_w
            rest_min -= lo
            room = total_left - rest_min
            if m.heats_tank:
                rest_min_t -= lo
                room_t = tank_left - rest_min_t
                if room_t < room:
                    room = room_t
            # min(max(room, lo), hi), as min/max pick on ties and NaN
            p = lo if lo > room else room
            if hi < p:
                p = hi
            levels = levels_of[name]
            if levels is not None:
                p = _level_at_or_below(levels, p)
            out[name] = p
            total_left -= p
            if m.heats_tank:
                tank_left -= p
        return out

    def _shed(
        self,
        targets: dict[str, float],
        actual_w: dict[str, float],
        cap_w: float,
        members: Sequence[MinerSpec],
        deadline_s: float,
        now: float,
        forced: list[str],
    ) -> None:
        """Stop miners (least efficient first) until what they can reach in time fits."""
        if cap_w == math.inf:
            return
        worst = 0.0
        state = self.state
        for m in members:
            if state[m.name].running:
                t = targets[m.name]
                a = actual_w.get(m.name, t)
                worst += a if a > t else t  # max(t, a)
        if worst <= cap_w:
            return  # fast path: even without ramping down, nothing can exceed the cap

        def reachable(m: MinerSpec) -> float:
            if not self.state[m.name].running:
                return 0.0  # a stop takes stop_s, far below any tick that matters here
            a = actual_w.get(m.name, targets[m.name])
            return max(targets[m.name], a - m.ramp_w_per_s * deadline_s)

        excess = sum(reachable(m) for m in members) - cap_w
        for m in reversed(members):
            if excess <= 1e-6:
                break
            st = self.state[m.name]
            if not st.running or m.name in self.no_pause:
                continue  # stopping a miner that cannot pause frees nothing
            excess -= reachable(m)
            targets[m.name] = 0.0
            self._switch(st, False, now)
            forced.append(m.name)

    def allocate(
        self,
        b: Budgets,
        actual_w: dict[str, float],
        now: float,
        deadline_s: float,
        manual_w: Mapping[str, float] | None = None,
        seen_running: Mapping[str, bool] | None = None,
        no_room_reason: str = "no_room",
    ) -> Allocation:
        """One tick. `actual_w`: measured power per miner (missing = assume its target).

        `manual_w` pins miners to a power (0 = off) for commissioning: they leave the
        automatic split but are still subject to the hard caps (and shed first).
        `seen_running`: per miner with a fresh readback of a firmware that can pause,
        whether it runs. A stop counts from the first readback that shows the miner
        stopped, not from the decision: a pause that lands late (a miner that lost power,
        rebooted and then got the retried pause) must not be followed by a resume a
        second later. `no_room_reason`: what a miner held off for lack of room is told
        (the controller passes the limit that set the budget).
        """
        if seen_running:
            for name, running in seen_running.items():
                st = self.state.get(name)
                if st is None or st.running or not st.stop_unconfirmed:
                    continue
                # Its off time starts when it is seen stopped: a stop that reached the
                # miner late (its pause retried after it lost power and booted again)
                # starts it late, even if no readback showed it running in between.
                st.switched_at_s = now
                if not running:
                    st.stop_unconfirmed = False
        pinned: Mapping[str, float] = manual_w or {}
        if pinned:
            b = self._take_manual(b, pinned, now)
        self._decide_running(b, now, pinned, deadline_s)
        targets = self._spread(b, pinned)
        forced: list[str] = []
        self._shed(targets, actual_w, b.hard_tank_cap_w, self._tank_members, deadline_s, now,
                   forced)
        self._shed(targets, actual_w, b.hard_cap_w, self._specs, deadline_s, now, forced)
        commands = []
        for name, m, st, resolution_w in self._commanded:
            t = targets[name]
            # Idempotent writes: keep the last target unless it moved by a resolution
            # step, or keeping it would exceed what the budget allows.
            if st.running:
                if resolution_w is not None and abs(t - st.target_w) < resolution_w \
                        and st.target_w <= t:
                    t = st.target_w
                st.target_w = t
            else:
                st.target_w = 0.0
            if st.running and st.want_off_since_s is None and name not in self.no_pause \
                    and name not in forced:
                reason, left = "", None  # running normally (the common case)
            else:
                reason, left = self._reason(m, st, now, name in pinned, name in forced,
                                            no_room_reason)
            commands.append(new_command(name, st.running, st.target_w, reason, left))
        return Allocation(tuple(commands), tuple(forced))

    def _reason(self, m: MinerSpec, st: MinerState, now: float, pinned: bool,
                forced: bool, no_room: str = "no_room") -> tuple[str, float | None]:
        """Why this miner is not running (or is about to stop), and for how long at most.

        `no_room` means the budget has no place for it; the controller turns it into the
        limit that set the budget (not enough surplus, a price, a safety trip)."""
        if forced:
            return "forced_off", None
        if pinned:
            return ("", None) if st.running else ("manual_off", None)
        if st.running:
            if m.name in self.no_pause:
                # No room even for its minimum: it runs only because it cannot pause.
                return ("cannot_pause", None) if self._room_w < m.min_power_w else ("", None)
            if st.want_off_since_s is not None:
                left = max(self.off_delay_s - (now - st.want_off_since_s),
                           m.min_on_s - (now - st.switched_at_s), 0.0)
                return "off_delay", left
            return "", None
        min_off_left = m.min_off_s - (now - st.switched_at_s)
        if st.want_on_since_s is not None:
            on_left = self.on_delay_s - (now - st.want_on_since_s)
            if min_off_left > on_left:
                return "min_off", max(min_off_left, 0.0)
            return "on_delay", max(on_left, 0.0)
        if min_off_left > 0.0:
            return "min_off", min_off_left
        return no_room, None
