"""A home battery in self-consumption mode, as most hybrid inverters run it.

It charges from whatever would be exported and discharges to cover whatever would be
imported, within its power limits and SoC bounds; Hearth does not command it. Losses are
split evenly between charge and discharge (each √η of the round-trip efficiency). Within a
step it responds to the step's average net power (saturation inside a step is not
resolved), which keeps the energy balance exact for every row.
"""

from __future__ import annotations

import math

from controller.config.models import BatterySection


class BatteryModel:
    def __init__(self, cfg: BatterySection) -> None:
        self.cfg = cfg
        self.capacity_j = cfg.capacity_kwh * 3.6e6
        self.eta = math.sqrt(cfg.round_trip_efficiency)
        self.soc_pct = cfg.initial_soc_pct
        # What each step reads, copied once: a config model's attributes go through
        # pydantic's `__getattr__` hook, a plain attribute does not.
        self._min_soc_pct, self._max_soc_pct = cfg.min_soc_pct, cfg.max_soc_pct
        self._max_charge_w, self._max_discharge_w = cfg.max_charge_w, cfg.max_discharge_w

    def response_w(self, net_w: float, dt_s: float) -> float:
        """Battery power (charge +) for a net surplus (+) or deficit (−) held for dt."""
        if net_w > 0:
            room_j = (self._max_soc_pct - self.soc_pct) / 100 * self.capacity_j
            limit = self._max_charge_w
            if dt_s > 0:
                limit = min(limit, room_j / self.eta / dt_s)
            if room_j <= 0:
                limit = 0.0
            return min(net_w, max(limit, 0.0))
        if net_w < 0:
            stored_j = (self.soc_pct - self._min_soc_pct) / 100 * self.capacity_j
            limit = self._max_discharge_w
            if dt_s > 0:
                limit = min(limit, stored_j * self.eta / dt_s)
            if stored_j <= 0:
                limit = 0.0
            return -min(-net_w, max(limit, 0.0))
        return 0.0

    def advance(self, power_w: float, dt_s: float) -> None:
        delta_j = power_w * dt_s * self.eta if power_w >= 0 else power_w * dt_s / self.eta
        soc = self.soc_pct + delta_j / self.capacity_j * 100
        self.soc_pct = min(max(soc, self._min_soc_pct), self._max_soc_pct)
