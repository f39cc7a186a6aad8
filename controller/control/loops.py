"""The two PID loops, built on simple-pid, with tracking so neither winds up.

Grid loop. The process value is grid power (import +) adjusted by the battery policy; the
setpoint is a small export; the output is total miner power. The plant here is static with
gain one (one more watt of miners is one more watt at the meter), so the loop runs in
velocity form with *actuator tracking*: before each step its integral is set to the miner
power actually measured, and the output is `actual + (kp + ki·dt)·error`. It can never
wind up against a miner that is slow, at its minimum, booting or ignoring its target, and
the per-tick gain is capped at 1 (dead-beat) so the same tuning is stable at the 1 s tick
on the Pi and at the 60 s step of a year-long simulation.

Tank loop. The process value is the tank temperature, the setpoint its target, the output
a cap on the power of the miners that heat the tank. The tank integrates power, so this is
a normal PI while it is the selected (binding) loop. While it is not selected its integral
is back-calculated from the power actually applied (external reset feedback), so when it
takes over it starts from where the miners are: a bumpless switch, with no windup however
long the other loop held the miners.
"""

from __future__ import annotations

from simple_pid import PID

from controller.config.models import PidTuning


def _no_clock() -> float:
    """simple-pid asks for the time even when dt is given; the core never reads a clock."""
    return 0.0


def _set_integral(pid: PID, value: float) -> None:
    """Load the integral through simple-pid's bumpless-transfer API (it clamps to limits)."""
    pid.set_auto_mode(False)
    pid.set_auto_mode(True, last_output=value)


def _upper(pid: PID) -> float:
    hi = pid.output_limits[1]
    return float("inf") if hi is None else float(hi)


class GridLoop:
    def __init__(self, tuning: PidTuning, setpoint_w: float, max_output_w: float) -> None:
        self._kp, self._ki, self._kd = tuning.kp, tuning.ki, tuning.kd
        self._tuned_for_dt = -1.0
        self._pid = PID(
            self._kp, self._ki, self._kd,
            setpoint=setpoint_w,
            output_limits=(0.0, max_output_w),
            time_fn=_no_clock,
        )

    @property
    def max_output_w(self) -> float:
        return _upper(self._pid)

    @property
    def setpoint_w(self) -> float:
        return float(self._pid.setpoint)

    @setpoint_w.setter
    def setpoint_w(self, value: float) -> None:
        self._pid.setpoint = value

    def update(self, process_w: float, actual_miner_w: float, dt_s: float) -> float:
        """New total miner power from the grid's point of view."""
        pid = self._pid
        if dt_s != self._tuned_for_dt:
            ki = min(self._ki, max(0.0, 1.0 - self._kp) / dt_s)
            pid.tunings = (min(self._kp, 1.0), ki, self._kd)
            self._tuned_for_dt = dt_s
        # External reset: the integral starts from what the miners really draw.
        _set_integral(pid, actual_miner_w)
        out = pid(process_w, dt=dt_s)
        return 0.0 if out is None else float(out)


class TankLoop:
    def __init__(
        self, tuning: PidTuning, setpoint_c: float, max_output_w: float, standing_w: float = 0.0
    ) -> None:
        # Start the integral at the power that holds the tank at target against its own
        # losses, so a (re)start at target does not wait for the integral to build up.
        self._pid = PID(
            tuning.kp, tuning.ki, tuning.kd,
            setpoint=setpoint_c,
            output_limits=(0.0, max_output_w),
            time_fn=_no_clock,
            starting_output=standing_w,
        )

    @property
    def setpoint_c(self) -> float:
        return float(self._pid.setpoint)

    @setpoint_c.setter
    def setpoint_c(self, value: float) -> None:
        self._pid.setpoint = value

    def update(self, tank_c: float, dt_s: float) -> float:
        out = self._pid(tank_c, dt=dt_s)
        return 0.0 if out is None else float(out)

    def track(self, applied_w: float) -> None:
        """Back-calculate the integral so this loop's last output equals what was applied."""
        p, _, d = self._pid.components
        _set_integral(self._pid, applied_w - p - d)

    @property
    def integral_w(self) -> float:
        return float(self._pid.components[1])
