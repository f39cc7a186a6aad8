"""Miner models that behave like the real ones, integrated exactly over a step.

A miner is in one of four phases:
- off: no power (a paused API miner's standby draw of a few watts is not modelled);
- booting: after resume or power-on it draws `idle_power_w` for `restart_s` and hashes
  nothing (Braiins OS warm-up, a stock S19 booting behind a relay, AxeOS restart);
- running: power moves toward the target at `ramp_w_per_s` (a Braiins tuner settles in
  about a minute, AxeOS in seconds), hash rate follows the efficiency curve;
- stopping: after pause/off, power falls linearly to zero over `stop_s`.
Within a step the command is constant; phase changes inside the step are integrated
piecewise, so energy and hashes are exact for any step length.

The plant does only what the drivers can do: a miner whose driver cannot pause it (AxeOS
without `use_pause`; `controller.miners.factory.can_pause`) is never off. It starts
running (a powered board hashes) and, told to stop, is held at its minimum power, as the
live driver holds it; each such refused stop is counted (`stops_held_at_min`).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.config.models import Actuation, MinerConfig
from controller.control.types import MinerCommand, MinerReading


@dataclass(slots=True)
class MinerStepResult:
    energy_j: float
    terahashes: float  # TH computed during the step (TH/s integrated over seconds)
    starts: int  # 1 if the miner was started (resume / power-on) this step


def miner_can_pause(cfg: MinerConfig) -> bool:
    """The product's own fact, from the miner's driver (imported late: the drivers pull in
    their HTTP clients, which a plant built without miners never needs)."""
    from controller.miners.factory import can_pause

    return can_pause(cfg)


class MinerModel:
    def __init__(self, cfg: MinerConfig, *, can_pause: bool | None = None,
                 running: bool | None = None) -> None:
        """`running` (default: True exactly when it cannot pause) starts it hashing at its
        minimum; a miner that cannot pause but has no power (contactor open) passes False."""
        self.cfg = cfg
        # What each step reads, copied once: a config model's attributes go through
        # pydantic's `__getattr__` hook, a plain attribute does not.
        self._min_w, self._max_w = cfg.min_power_w, cfg.max_power_w
        self._idle_w, self._ramp_w_per_s = cfg.idle_power_w, cfg.ramp_w_per_s
        self._restart_s, self._stop_s = cfg.restart_s, cfg.stop_s
        self.can_pause = miner_can_pause(cfg) if can_pause is None else can_pause
        self.stops_held_at_min = 0  # stop commands this miner's firmware cannot carry out
        self.phase = "off"
        self.power_w = 0.0
        self.target_w = 0.0
        self.phase_left_s = 0.0  # time left in booting/stopping
        self._stop_from_w = 0.0
        self._levels = cfg.levels_w()
        self.ignore_commands = False  # fault injection: a miner that ignores its target
        self._hash_memo: dict[float, float] = {}
        self._told_run = False  # the last command's run flag (a stop counts after a run)
        if (not self.can_pause) if running is None else running:
            self.phase = "running"
            self.power_w = self.target_w = self._clamp_target(cfg.min_power_w)

    def _ths(self, power_w: float) -> float:
        """Hash rate at a power; memoised because a miner holds a few powers for long."""
        h = self._hash_memo.get(power_w)
        if h is None:
            if len(self._hash_memo) > 4096:
                self._hash_memo.clear()
            h = self._hash_memo[power_w] = self.cfg.hashrate_ths_at(power_w)
        return h

    def _clamp_target(self, p: float) -> float:
        p = min(max(p, self._min_w), self._max_w)
        if self._levels is not None:
            best = self._levels[0]
            for lv in self._levels:
                if lv <= p + 1e-9:
                    best = lv
            p = best
        return p

    def apply(self, cmd: MinerCommand) -> int:
        """Take a command; returns 1 if it started the miner."""
        if self.ignore_commands:
            return 0
        told_run, self._told_run = self._told_run, cmd.run
        if cmd.run:
            self.target_w = self._clamp_target(cmd.power_target_w)
            if self.phase in ("off", "stopping"):
                self.phase = "booting"
                self.phase_left_s = self._restart_s
                self.power_w = self._idle_w
                return 1
        elif self.phase in ("booting", "running") and not self.can_pause:
            # No pause in its API: the driver sets its minimum power instead.
            if told_run:
                self.stops_held_at_min += 1
            self.target_w = self._clamp_target(self._min_w)
        elif self.phase in ("booting", "running"):
            self.phase = "stopping"
            self.phase_left_s = self._stop_s
            self._stop_from_w = self.power_w
            self.target_w = 0.0
        return 0

    def advance(self, dt_s: float) -> tuple[float, float]:
        """Integrate over dt; returns (energy J, terahashes)."""
        idle_w, stop_s = self._idle_w, self._stop_s
        energy = 0.0
        hashes = 0.0
        left = dt_s
        while left > 1e-12:
            if self.phase == "off":
                self.power_w = 0.0
                break
            if self.phase == "booting":
                span = min(left, self.phase_left_s)
                energy += idle_w * span
                self.phase_left_s -= span
                left -= span
                if self.phase_left_s <= 1e-12:
                    self.phase = "running"
                    self.power_w = idle_w
                continue
            if self.phase == "stopping":
                span = min(left, self.phase_left_s)
                if stop_s > 0:
                    p0 = self._stop_from_w * self.phase_left_s / stop_s
                    p1 = self._stop_from_w * (self.phase_left_s - span) / stop_s
                    energy += (p0 + p1) / 2 * span
                self.phase_left_s -= span
                left -= span
                if self.phase_left_s <= 1e-12:
                    self.phase = "off"
                    self.power_w = 0.0
                continue
            # running: ramp toward target, then hold.
            p0, tgt = self.power_w, self.target_w
            ramp_s = abs(tgt - p0) / self._ramp_w_per_s
            span = min(left, ramp_s)
            p1 = tgt if span >= ramp_s else p0 + (tgt - p0) * span / ramp_s
            energy += (p0 + p1) / 2 * span
            h1 = self._ths(p1)
            hashes += (self._ths(p0) + h1) / 2 * span
            rest = left - span
            energy += p1 * rest
            hashes += h1 * rest
            self.power_w = p1
            break
        return energy, hashes

    def reading(self, now_s: float) -> MinerReading:
        hashing = self.phase == "running"
        return MinerReading(
            power_w=self.power_w,
            hashrate_ths=self._ths(self.power_w) if hashing else 0.0,
            running=self.phase in ("booting", "running"),
            at_s=now_s,
            can_pause=self.can_pause,
        )

    @property
    def is_on(self) -> bool:
        return self.phase in ("booting", "running")


def is_continuous(cfg: MinerConfig) -> bool:
    return cfg.actuation is Actuation.POWER_TARGET
