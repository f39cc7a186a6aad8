"""A stratification-free buffer tank: m·c·dT/dt = heat in − heat delivered − UA·(T − T_amb).

With inputs held over a step this is linear, so it is solved exactly (exponential decay
toward the equilibrium temperature); any step length is stable. The building draws its
heat demand from the tank only down to `min_c` (below that the water is too cold for the
heating circuit); what the tank cannot deliver, the backup heater does.
"""

from __future__ import annotations

import math

from controller.config.models import TankSection


class TankModel:
    def __init__(self, cfg: TankSection) -> None:
        self.cfg = cfg
        self.cap_j_per_k = cfg.heat_capacity_j_per_k
        self.temp_c = cfg.start_c

    def _end_temp(self, t0: float, net_in_w: float, dt_s: float) -> float:
        """T(dt) = T0 + (P − UA·(T0 − T_amb))·dt/C · (1 − e^−x)/x with x = UA·dt/C.

        Written this way it is exact and stays finite for any UA ≥ 0, down to UA → 0
        where it becomes the lossless T0 + P·dt/C (the textbook form divides by UA).
        """
        ua, amb, cap = self.cfg.heat_loss_w_per_k, self.cfg.ambient_c, self.cap_j_per_k
        x = ua * dt_s / cap
        shape = -math.expm1(-x) / x if x > 1e-12 else 1.0 - x / 2
        return t0 + (net_in_w - ua * (t0 - amb)) * dt_s / cap * shape

    def advance(self, heat_in_w: float, demand_w: float, dt_s: float) -> tuple[float, float]:
        """Advance one step. Returns (heat delivered to the building W, backup heat W)."""
        t0, tmin = self.temp_c, self.cfg.min_c
        delivered = demand_w if t0 >= tmin else 0.0
        t1 = self._end_temp(t0, heat_in_w - delivered, dt_s)
        if delivered > 0 and t1 < tmin:
            # Deliver only what keeps the tank at min_c: T_end is linear in delivered heat.
            t_none = self._end_temp(t0, heat_in_w, dt_s)
            slope = (t_none - t1) / delivered  # K per W delivered
            delivered = max(0.0, min(delivered, (t_none - tmin) / slope))
            t1 = self._end_temp(t0, heat_in_w - delivered, dt_s)
        self.temp_c = t1
        return delivered, demand_w - delivered
