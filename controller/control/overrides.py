"""What people and the service ask of the controller, as an input to `step()`.

Commands from MQTT or the HMI (mode, pause all, manual miner power, tank target, DR cap)
and the service's own holds (start-up delay, shutdown) are not measurements, but they are
inputs all the same: the service keeps one `Overrides` value and passes it to every step,
so the core stays pure and a test can replay any sequence of commands. Hard limits still
win over every override.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from controller.config.models import Mode

_NONE: Mapping[str, float] = MappingProxyType({})


class Overrides(NamedTuple):
    hold_reason: str | None = None  # set: every miner is held off (start delay, pause all)
    dr_cap_w: float | None = None  # a cap on total miner power from a DR command
    tank_target_c: float | None = None  # a person's tank target (HMI, MQTT): wins over all
    mode: Mode | None = None  # replaces the configured mode
    manual_w: Mapping[str, float] = _NONE  # miner -> fixed power (0 = keep off), commissioning
    dr_absorb_w: float | None = None  # a DR request to absorb: miners take at least this (W)
    plan_min_w: float | None = None  # day-ahead plan: run the miners at least this total (W),
    #                                  buying if surplus is short; replaces the price rule
    plan_tank_target_c: float | None = None  # day-ahead plan's tank target (below a person's)

    def effective_tank_target_c(self, configured_c: float) -> float:
        """The tank target in force: a person's, else the plan's, else the configured one.
        An installer who sets a target means it; the plan only moves the default."""
        if self.tank_target_c is not None:
            return self.tank_target_c
        if self.plan_tank_target_c is not None:
            return self.plan_tank_target_c
        return configured_c


NO_OVERRIDES = Overrides()
