"""From the plant model to what the emulated meters and inverters show.

The plant gives site totals (grid import +, battery charge +); real meters also show
each phase, the voltage and the frequency. A three-phase site splits power evenly over
the phases (the plant has no per-phase model); a one-phase site puts it all on L1.
"""

from __future__ import annotations

from controller.control.types import Measurements


def values_from_measurements(m: Measurements, *, phases: int = 3, voltage_v: float = 230.0,
                             frequency_hz: float = 50.0) -> dict[str, float]:
    out: dict[str, float] = {"grid_frequency_hz": frequency_hz}
    for i in range(1, 4):
        out[f"grid_voltage_l{i}_v"] = voltage_v if i <= phases else 0.0
    for name, prefix in (("grid_power_w", "grid_power"), ("pv_power_w", "pv_power")):
        r = getattr(m, name)
        if r is None:
            continue
        out[name] = r.value
        for i in range(1, 4):
            out[f"{prefix}_l{i}_w"] = r.value / phases if i <= phases else 0.0
            if prefix == "grid_power":
                out[f"grid_current_l{i}_a"] = (r.value / phases / voltage_v
                                               if i <= phases else 0.0)
    if m.battery_power_w is not None:
        out["battery_power_w"] = m.battery_power_w.value
    if m.soc_pct is not None:
        out["soc_pct"] = m.soc_pct.value
    return out
