"""Heat meter: a pulse-output flow meter plus supply and return temperatures.

Energy per pulse = volume * density(T at the flow meter) * c_p * (T_supply - T_return).
Density from the Thiesen equation for air-free water (as given by Jones & Harris, J. Res.
NIST 97 (1992) 335, eq. 3; good to 0.01 % over 0..40 °C and ~0.1 % to 100 °C); c_p held at
4186 J/(kg K), within 0.3 % from 20 to 90 °C. A meter to EN 1434 would use the enthalpy
difference; this is the same to well under the pulse resolution of a hobby flow meter.

Counters are integers (J, mL, pulses): the ESP32 build uses single-precision floats,
which would stop adding small increments to a large kWh total.

Flow: between pulses the rate is volume / interval of the pulses seen; while no new pulse
comes it can be at most one pulse's volume over the time since the last one, and it is zero
after `flow_timeout_ms`.
"""

CP_J_PER_KG_K = 4186.0


def water_density_kg_per_l(temp_c: float) -> float:
    t = temp_c
    rho_kg_m3 = 999.97495 * (1.0 - (t - 3.983035) ** 2 * (t + 301.797)
                             / (522528.9 * (t + 69.34881)))
    return rho_kg_m3 / 1000.0


class HeatMeter:
    def __init__(
        self,
        litres_per_pulse: float,
        flow_timeout_ms: int = 60000,
        energy_j: int = 0,
        volume_ml: int = 0,
        flow_meter_in: str = "return",
    ) -> None:
        self.litres_per_pulse = litres_per_pulse
        self.flow_timeout_ms = flow_timeout_ms
        self.flow_meter_in = flow_meter_in  # which pipe's temperature sets the density
        self.energy_j = energy_j  # heat delivered (supply warmer than return) since install
        self.volume_ml = volume_ml
        self.unmetered_ml = 0  # flowed while a temperature was missing: heat not counted
        self._residual_j = 0.0
        self._residual_ml = 0.0
        self._count: "int | None" = None
        self._anchor_count = 0
        self._anchor_ms: "int | None" = None
        self._flow_l_per_s = 0.0
        self._pulse_flow_l_per_s = 0.0
        self.power_w: "float | None" = None
        self.delta_t_k: "float | None" = None

    @property
    def flow_l_per_min(self) -> float:
        return self._flow_l_per_s * 60.0

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / 3.6e6

    def update(
        self,
        now_ms: int,
        pulse_count: int,
        last_pulse_ms: "int | None",
        supply_c: "float | None",
        return_c: "float | None",
    ) -> None:
        """Account for the pulses since the last call; refresh flow and power."""
        valid = supply_c is not None and return_c is not None
        dt_k = (supply_c - return_c) if (supply_c is not None and return_c is not None) else None
        self.delta_t_k = dt_k
        meter_c = return_c if self.flow_meter_in == "return" else supply_c
        if meter_c is None:
            meter_c = supply_c if supply_c is not None else return_c
        rho = water_density_kg_per_l(meter_c) if meter_c is not None else 1.0

        if self._count is None or pulse_count < self._count:
            # First call, or the pulse counter restarted: start counting from here.
            self._count = pulse_count
            self._anchor_count = pulse_count
            self._anchor_ms = last_pulse_ms
            self._flow_l_per_s = 0.0
        delta = pulse_count - self._count
        self._count = pulse_count
        if delta > 0:
            litres = delta * self.litres_per_pulse
            ml = litres * 1000.0 + self._residual_ml
            whole_ml = int(ml)
            self._residual_ml = ml - whole_ml
            self.volume_ml += whole_ml
            if valid and dt_k is not None:
                if dt_k > 0:
                    joules = litres * rho * CP_J_PER_KG_K * dt_k + self._residual_j
                    whole_j = int(joules)
                    self._residual_j = joules - whole_j
                    self.energy_j += whole_j
            else:
                self.unmetered_ml += whole_ml
            if last_pulse_ms is not None:
                if self._anchor_ms is not None and last_pulse_ms > self._anchor_ms:
                    pulses = pulse_count - self._anchor_count
                    seconds = (last_pulse_ms - self._anchor_ms) / 1000.0
                    self._pulse_flow_l_per_s = pulses * self.litres_per_pulse / seconds
                self._anchor_count = pulse_count
                self._anchor_ms = last_pulse_ms
            self._flow_l_per_s = self._pulse_flow_l_per_s
        elif self._anchor_ms is not None:
            since_ms = now_ms - self._anchor_ms
            if since_ms >= self.flow_timeout_ms:
                self._flow_l_per_s = 0.0
            elif since_ms > 0:
                bound = self.litres_per_pulse / (since_ms / 1000.0)
                if bound < self._pulse_flow_l_per_s:
                    self._flow_l_per_s = bound
        if valid and dt_k is not None:
            self.power_w = self._flow_l_per_s * rho * CP_J_PER_KG_K * dt_k
        else:
            self.power_w = None

    def counters(self) -> "dict[str, int]":
        """What is persisted across reboots."""
        return {"energy_j": self.energy_j, "volume_ml": self.volume_ml}

    def status(self) -> "dict[str, object]":
        return {
            "power_w": None if self.power_w is None else round(self.power_w, 1),
            "flow_l_per_min": round(self.flow_l_per_min, 3),
            "delta_t_k": None if self.delta_t_k is None else round(self.delta_t_k, 2),
            "energy_kwh": round(self.energy_kwh, 4),
            "energy_wh": self.energy_j // 3600,
            "volume_l": self.volume_ml / 1000.0,
            "unmetered_l": self.unmetered_ml / 1000.0,
        }
