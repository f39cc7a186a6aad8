"""The emulated miner behind every API emulator: the plant's `MinerModel` in real time.

Each protocol emulator (HTTP or TCP, one file per firmware) translates its API onto one
`EmulatedMiner`, so power and hash rate follow the same dynamics as in the simulator
(boot, ramp, stop) while the driver talks to it over a real socket. Faults users hit are
switches on this object:

- `hang = True`: the server accepts the connection and never answers (a wedged firmware);
- `slow_factor = k`: the plant runs k times slower (a tuner that takes ages to settle);
- `fw_min_w / fw_max_w`: the range the firmware accepts; outside it a write is rejected
  with an error in the API's own format;
- `ignore_commands = True`: writes are accepted and reported back, the hardware keeps its
  power (a firmware bug: the tuner ignores the target, a pause that does not stop hashing);
- `trigger_overheat(cooldown_s, reduce_to_w)`: hashing stops (thermal protection), and after
  the cool-down it comes back on its own at reduced settings;
- auth expiry lives in the protocol emulators (tokens, salts, sessions).
`writes` records every accepted power/run write, so tests can prove idempotency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.config.models import MinerConfig
from controller.control.types import MinerCommand
from controller.sim.plant.miners import MinerModel


class FirmwareRejected(Exception):
    """The emulated firmware says no; the protocol layer renders it in its own format."""


class EmulatedMiner:
    def __init__(self, cfg: MinerConfig, *, clock: Callable[[], float] = time.monotonic,
                 fw_min_w: float | None = None, fw_max_w: float | None = None,
                 start_w: float | None = None, start_running: bool = True) -> None:
        self.cfg = cfg
        self.clock = clock
        self.model = MinerModel(cfg, running=False)
        # Firmware without a pause (AxeOS) is running whenever it has power.
        start_running = start_running or not self.model.can_pause
        self.fw_min_w = cfg.min_power_w if fw_min_w is None else fw_min_w
        self.fw_max_w = cfg.max_power_w if fw_max_w is None else fw_max_w
        self.hang = False
        self.ignore_commands = False
        self.slow_factor = 1.0
        self.writes: list[tuple[str, Any]] = []
        self.paused = not start_running
        self.target_w = start_w if start_w is not None else cfg.min_power_w
        self.overheat_until: float | None = None
        self._reduce_to_w = self.target_w
        self.overheated_once = False
        self._t = clock()
        if start_running:
            self.model.apply(MinerCommand(cfg.name, True, self.target_w))
            self.model.advance(cfg.restart_s + cfg.max_power_w / cfg.ramp_w_per_s + 1.0)

    # -- time -----------------------------------------------------------------------------

    def advance(self) -> None:
        now = self.clock()
        dt = max(0.0, now - self._t) / self.slow_factor
        self._t = now
        if self.overheat_until is not None and now >= self.overheat_until:
            self.overheat_until = None
            self.target_w = self._reduce_to_w
            if not self.paused:
                self.model.apply(MinerCommand(self.cfg.name, True, self.target_w))
        self.model.advance(dt)

    # -- what the firmware reports --------------------------------------------------------

    @property
    def overheated(self) -> bool:
        return self.overheat_until is not None

    @property
    def phase(self) -> str:
        self.advance()
        return self.model.phase

    @property
    def power_w(self) -> float:
        self.advance()
        return self.model.power_w

    @property
    def hashrate_ths(self) -> float:
        self.advance()
        return self.model.reading(self.clock()).hashrate_ths

    @property
    def temp_c(self) -> float:
        if self.overheated:
            return 96.0
        return 30.0 + 40.0 * self.power_w / self.cfg.max_power_w

    # -- what the firmware is told --------------------------------------------------------

    def check_range(self, watts: float) -> None:
        if not self.fw_min_w - 1e-9 <= watts <= self.fw_max_w + 1e-9:
            raise FirmwareRejected(f"power target {watts:g} W out of range "
                                   f"<{self.fw_min_w:g}, {self.fw_max_w:g}>")

    def set_target(self, watts: float) -> None:
        self.advance()
        self.check_range(watts)
        self.writes.append(("target", watts))
        self.target_w = watts
        if not self.paused and not self.overheated and not self.ignore_commands:
            self.model.apply(MinerCommand(self.cfg.name, True, watts))

    def pause(self) -> None:
        self.advance()
        self.writes.append(("pause", None))
        self.paused = True
        if not self.ignore_commands:
            self.model.apply(MinerCommand(self.cfg.name, False, 0.0))

    def resume(self) -> None:
        self.advance()
        self.writes.append(("resume", None))
        self.paused = False
        if not self.overheated and not self.ignore_commands:
            self.model.apply(MinerCommand(self.cfg.name, True, self.target_w))

    def trigger_overheat(self, cooldown_s: float, reduce_to_w: float) -> None:
        """Thermal protection: stop hashing now, come back at `reduce_to_w` after cool-down."""
        self.advance()
        self.overheated_once = True
        self.overheat_until = self.clock() + cooldown_s
        self._reduce_to_w = reduce_to_w
        self.model.apply(MinerCommand(self.cfg.name, False, 0.0))

    @property
    def power_writes(self) -> list[float]:
        return [float(v) for k, v in self.writes if k == "target"]
