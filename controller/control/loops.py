"""The two PID loops, with tracking so neither winds up.

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

`Pid` is simple-pid 2.0.1's arithmetic (the library these loops were first built on),
restricted to what they use: output limits, an explicit dt, derivative on measurement,
and loading the integral (simple-pid's `set_auto_mode(False)` then `set_auto_mode(True,
last_output=...)`). The same operations in the same order give bit-identical outputs
(tests/property/test_pid_reference.py checks it against the library) at a fraction of
the cost: the library's reset, property and clamp calls were a fifth of a control step.
"""

from __future__ import annotations

from controller.config.models import PidTuning

_SAMPLE_TIME_S = 0.01  # simple-pid's default: a shorter dt returns the last output


class Pid:
    """A PID with output limits `(0, max_output)`, called with an explicit dt."""

    __slots__ = ("_d", "_i", "_last_input", "_last_output", "_p", "kd", "ki", "kp",
                 "max_output", "setpoint")

    def __init__(self, kp: float, ki: float, kd: float, setpoint: float, max_output: float,
                 starting_output: float = 0.0) -> None:
        self.kp, self.ki, self.kd = kp, ki, kd
        self.setpoint = setpoint
        self.max_output = max_output
        self._p = self._d = 0.0
        self._i = self._clamp(starting_output)
        self._last_output: float | None = None
        self._last_input: float | None = None

    def _clamp(self, value: float) -> float:
        if value > self.max_output:
            return self.max_output
        if value < 0.0:
            return 0.0
        return value

    def load_integral(self, value: float) -> None:
        """Restart from `value` (clamped): the integral holds it, the last input and output
        are forgotten (bumpless transfer: no derivative kick on the next call)."""
        self._p = self._d = 0.0
        self._last_output = self._last_input = None
        self._i = self._clamp(value)

    def __call__(self, input_: float, dt: float) -> float:
        if dt <= 0:
            raise ValueError(f"dt has negative value {dt}, must be positive")
        if dt < _SAMPLE_TIME_S and self._last_output is not None:
            return self._last_output
        error = self.setpoint - input_
        last = self._last_input
        d_input = input_ - (last if last is not None else input_)
        self._p = self.kp * error
        self._i = self._clamp(self._i + self.ki * error * dt)
        self._d = -self.kd * d_input / dt
        out = self._clamp(self._p + self._i + self._d)
        self._last_output = out
        self._last_input = input_
        return out

    def step_from(self, integral: float, input_: float, dt: float) -> float:
        """`load_integral(integral)` then a call: the grid loop's velocity form."""
        self._p = self._d = 0.0
        self._last_output = self._last_input = None
        self._i = self._clamp(integral)
        return self(input_, dt)

    def track(self, output: float) -> None:
        """Load the integral so that the last call's terms add up to `output`."""
        self.load_integral(output - self._p - self._d)

    @property
    def components(self) -> tuple[float, float, float]:
        return self._p, self._i, self._d


class GridLoop:
    def __init__(self, tuning: PidTuning, setpoint_w: float, max_output_w: float) -> None:
        self._kp, self._ki, self._kd = tuning.kp, tuning.ki, tuning.kd
        self._tuned_for_dt = -1.0
        self._pid = Pid(self._kp, self._ki, self._kd, setpoint_w, max_output_w)

    @property
    def max_output_w(self) -> float:
        return self._pid.max_output

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
            pid.kp = min(self._kp, 1.0)
            pid.ki = min(self._ki, max(0.0, 1.0 - self._kp) / dt_s)
            self._tuned_for_dt = dt_s
        # External reset: the integral starts from what the miners really draw.
        return float(pid.step_from(actual_miner_w, process_w, dt_s))


class TankLoop:
    def __init__(
        self, tuning: PidTuning, setpoint_c: float, max_output_w: float, standing_w: float = 0.0
    ) -> None:
        # Start the integral at the power that holds the tank at target against its own
        # losses, so a (re)start at target does not wait for the integral to build up.
        self._pid = Pid(tuning.kp, tuning.ki, tuning.kd, setpoint_c, max_output_w,
                        starting_output=standing_w)

    @property
    def setpoint_c(self) -> float:
        return float(self._pid.setpoint)

    @setpoint_c.setter
    def setpoint_c(self, value: float) -> None:
        self._pid.setpoint = value

    def update(self, tank_c: float, dt_s: float) -> float:
        return float(self._pid(tank_c, dt_s))

    def track(self, applied_w: float) -> None:
        """Back-calculate the integral so this loop's last output equals what was applied."""
        self._pid.track(applied_w)

    @property
    def integral_w(self) -> float:
        return float(self._pid.components[1])
