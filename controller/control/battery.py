"""Battery policy: what the grid loop regulates, given who gets the surplus first.

The home battery runs its own self-consumption logic (charge from export, discharge to
cover import); Hearth does not command it. It steers the miners by choosing what the grid
loop sees as its process value:

- battery first (SoC below `priority_soc_pct`): grid power + battery discharge. Surplus the
  battery can absorb never shows up as export, so miners only get what overflows; and any
  discharge counts as import, so miners back off before they drain the battery.
- miners first (SoC at or above priority): grid power − battery power. Charging counts as
  surplus the miners may take; discharge still counts as import.
- drain (SoC above `miners_may_discharge_above_soc_pct`, if set): grid power − battery
  power − max discharge. The miners may draw the battery at up to its discharge limit.

Each boundary has a hysteresis band so the policy does not chatter around a threshold.
Below `reserve_soc_pct + hysteresis` a hard limit also applies (see `reserve_cap_w`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from controller.config.models import BatterySection


class BatteryPolicy(StrEnum):
    BATTERY_FIRST = "battery_first"
    MINERS_FIRST = "miners_first"
    DRAIN = "drain"


# Read every tick: module constants, not lookups on the enum class (in Python 3.11 those go
# through `EnumType.__getattr__`).
_BATTERY_FIRST: Final = BatteryPolicy.BATTERY_FIRST
_MINERS_FIRST: Final = BatteryPolicy.MINERS_FIRST
_DRAIN: Final = BatteryPolicy.DRAIN


class BatteryArbiter:
    def __init__(self, cfg: BatterySection, hysteresis_pct: float) -> None:
        self.cfg = cfg
        self.hyst = hysteresis_pct
        self.policy = _BATTERY_FIRST
        # The thresholds a tick reads, copied once (a config model's attributes go through
        # pydantic's `__getattr__` hook).
        self._drain_above_soc_pct = cfg.miners_may_discharge_above_soc_pct
        self._priority_soc_pct = cfg.priority_soc_pct
        self._reserve_soc_pct = cfg.reserve_soc_pct
        self._max_discharge_w = cfg.max_discharge_w

    def update(self, soc_pct: float) -> BatteryPolicy:
        h, p = self.hyst, self.policy
        drain_above = self._drain_above_soc_pct
        priority = self._priority_soc_pct
        if drain_above is not None and (
            soc_pct > drain_above or (p is _DRAIN and soc_pct > drain_above - h)
        ):
            p = _DRAIN
        elif soc_pct >= priority or (p is not _BATTERY_FIRST and soc_pct > priority - h):
            p = _MINERS_FIRST
        else:
            p = _BATTERY_FIRST
        self.policy = p
        return p

    def process_value_w(self, grid_w: float, battery_w: float) -> float:
        """What the grid loop regulates to its export setpoint (import +)."""
        p = self.policy
        if p is _BATTERY_FIRST:
            return grid_w + max(-battery_w, 0.0)
        if p is _MINERS_FIRST:
            return grid_w - battery_w
        return grid_w - battery_w - self._max_discharge_w

    def reserve_cap_w(self, soc_pct: float, battery_w: float, miner_w: float) -> float | None:
        """Hard cap near the reserve: miners must not be fed by a discharging battery."""
        if soc_pct > self._reserve_soc_pct + self.hyst or battery_w >= 0:
            return None
        return max(miner_w + battery_w, 0.0)
