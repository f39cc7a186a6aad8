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
from controller.control.types import MinerCommand


@dataclass(slots=True)
class MinerState:
    """What the allocator remembers about one miner between ticks."""

    running: bool = False
    switched_at_s: float = -math.inf  # when `running` last changed
    target_w: float = 0.0  # last target sent
    want_on_since_s: float | None = None  # enough power to start, since
    want_off_since_s: float | None = None  # too little power to keep running, since
    # Stopped by us and not yet seen stopped: until its readback shows it off, its off
    # time has not begun (`switched_at_s` is then the first readback showing it stopped).
    stop_unconfirmed: bool = False


class Budgets(NamedTuple):  # NamedTuples: built every tick, several times cheaper
    available_w: float  # steady-state estimate, for on/off decisions
    target_w: float  # what the loops want now, spread over running miners
    tank_target_w: float  # cap on miners that heat the tank (soft)
    hard_cap_w: float  # never exceeded: import limit, DR cap, stale data
    hard_tank_cap_w: float  # never exceeded by tank-heating miners: tank max


class Allocation(NamedTuple):
    commands: tuple[MinerCommand, ...]
    forced_off: tuple[str, ...]  # miners stopped by a hard cap, min_on_s overridden


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
    ) -> None:
        # Most efficient first; ties keep configuration order.
        self.miners = sorted(miners, key=lambda m: m.best_j_per_th)
        self._config_order = [m.name for m in miners]
        self._by_name = {m.name: m for m in miners}
        self.state: dict[str, MinerState] = {m.name: MinerState() for m in miners}
        self._levels = {m.name: m.levels_w() for m in miners}
        self.on_hysteresis_w = on_hysteresis_w
        self.on_delay_s = on_delay_s
        self.off_delay_s = off_delay_s

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

    def _decide_running(self, b: Budgets, now: float, pinned: Collection[str]) -> None:
        total_left = min(b.available_w, b.hard_cap_w)
        tank_left = min(b.tank_target_w, b.hard_tank_cap_w)
        for m in self.miners:
            if m.name in pinned:
                continue
            st = self.state[m.name]
            room = min(total_left, tank_left) if m.heats_tank else total_left
            if st.running:
                st.want_on_since_s = None
                if room >= m.min_power_w:
                    st.want_off_since_s = None
                elif st.want_off_since_s is None:
                    st.want_off_since_s = now
                if (
                    st.want_off_since_s is not None
                    and now - st.want_off_since_s >= self.off_delay_s
                    and now - st.switched_at_s >= m.min_on_s
                ):
                    self._switch(st, False, now)
            else:
                st.want_off_since_s = None
                if room >= m.min_power_w + self.on_hysteresis_w:
                    if st.want_on_since_s is None:
                        st.want_on_since_s = now
                    if (
                        now - st.want_on_since_s >= self.on_delay_s
                        and now - st.switched_at_s >= m.min_off_s
                    ):
                        self._switch(st, True, now)
                else:
                    st.want_on_since_s = None
            if st.running:
                take = min(max(room, m.min_power_w), m.max_power_w)
                total_left -= take
                if m.heats_tank:
                    tank_left -= take

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
        for m in self.miners:
            if m.name in pinned:
                out[m.name] = pinned[m.name] if self.state[m.name].running else 0.0
                continue
            if not self.state[m.name].running:
                out[m.name] = 0.0
                continue
            room = min(total_left, tank_left) if m.heats_tank else total_left
            p = min(max(room, m.min_power_w), m.max_power_w)
            levels = self._levels[m.name]
            if levels is not None:
                p = _level_at_or_below(levels, p)
            out[m.name] = p
            total_left -= p
            if m.heats_tank:
                tank_left -= p
        return out

    def _shed(
        self,
        targets: dict[str, float],
        actual_w: Mapping[str, float],
        cap_w: float,
        members: Sequence[MinerConfig],
        deadline_s: float,
        now: float,
        forced: list[str],
    ) -> None:
        """Stop miners (least efficient first) until what they can reach in time fits."""
        if cap_w == math.inf:
            return
        worst = 0.0
        for m in members:
            if self.state[m.name].running:
                worst += max(targets[m.name], actual_w.get(m.name, targets[m.name]))
        if worst <= cap_w:
            return  # fast path: even without ramping down, nothing can exceed the cap

        def reachable(m: MinerConfig) -> float:
            if not self.state[m.name].running:
                return 0.0  # a stop takes stop_s, far below any tick that matters here
            a = actual_w.get(m.name, targets[m.name])
            return max(targets[m.name], a - m.ramp_w_per_s * deadline_s)

        excess = sum(reachable(m) for m in members) - cap_w
        for m in reversed(members):
            if excess <= 1e-6:
                break
            st = self.state[m.name]
            if not st.running:
                continue
            excess -= reachable(m)
            targets[m.name] = 0.0
            self._switch(st, False, now)
            forced.append(m.name)

    def allocate(
        self,
        b: Budgets,
        actual_w: Mapping[str, float],
        now: float,
        deadline_s: float,
        manual_w: Mapping[str, float] | None = None,
        seen_running: Mapping[str, bool] | None = None,
    ) -> Allocation:
        """One tick. `actual_w`: measured power per miner (missing = assume its target).

        `manual_w` pins miners to a power (0 = off) for commissioning: they leave the
        automatic split but are still subject to the hard caps (and shed first).
        `seen_running`: per miner with a fresh readback of a firmware that can pause,
        whether it runs. A stop counts from the first readback that shows the miner
        stopped, not from the decision: a pause that lands late (a miner that lost power,
        rebooted and then got the retried pause) must not be followed by a resume a
        second later.
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
        self._decide_running(b, now, pinned)
        targets = self._spread(b, pinned)
        forced: list[str] = []
        tank_members = [m for m in self.miners if m.heats_tank]
        self._shed(targets, actual_w, b.hard_tank_cap_w, tank_members, deadline_s, now, forced)
        self._shed(targets, actual_w, b.hard_cap_w, self.miners, deadline_s, now, forced)
        commands = []
        for name in self._config_order:
            st = self.state[name]
            m = self._by_name[name]
            t = targets[name]
            # Idempotent writes: keep the last target unless it moved by a resolution
            # step, or keeping it would exceed what the budget allows.
            if (
                st.running
                and m.actuation is Actuation.POWER_TARGET
                and abs(t - st.target_w) < m.target_resolution_w
                and st.target_w <= t
            ):
                t = st.target_w
            st.target_w = t if st.running else 0.0
            commands.append(MinerCommand(name, st.running, st.target_w))
        return Allocation(tuple(commands), tuple(forced))
