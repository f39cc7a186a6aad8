"""The loops' own `Pid` computes exactly what simple-pid 2.0.1 computes, bit for bit, for
every sequence of the operations the loops use (a call with dt, loading the integral
through the bumpless-transfer API, both at once, tracking an applied output, a setpoint
change, a retune). The loops left the
library for speed; this keeps the library as the reference the results must not drift
from."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from simple_pid import PID

from controller.control.loops import Pid

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
gain = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)
dts = st.one_of(st.sampled_from([0.001, 0.5, 1.0, 10.0, 60.0, 900.0]),
                st.floats(min_value=1e-4, max_value=3600.0))
ops = st.lists(st.one_of(
    st.tuples(st.just("call"), finite, dts),
    st.tuples(st.just("load"), finite),
    st.tuples(st.just("step_from"), finite, finite, dts),
    st.tuples(st.just("track"), finite),
    st.tuples(st.just("setpoint"), finite),
    st.tuples(st.just("tunings"), gain, gain, gain),
), max_size=60)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                 == math.copysign(1, b))


@settings(max_examples=300, deadline=None)
@given(gain, gain, gain, finite, st.floats(min_value=0.0, max_value=20_000.0), finite, ops)
def test_pid_equals_simple_pid(kp: float, ki: float, kd: float, setpoint: float,
                               max_out: float, start: float, seq: list[tuple]) -> None:
    ref = PID(kp, ki, kd, setpoint=setpoint, output_limits=(0.0, max_out),
              time_fn=lambda: 0.0, starting_output=start)
    own = Pid(kp, ki, kd, setpoint, max_out, starting_output=start)
    for op in seq:
        if op[0] == "call":
            assert _same(own(op[1], op[2]), ref(op[1], dt=op[2]))
        elif op[0] == "load":
            ref.set_auto_mode(False)
            ref.set_auto_mode(True, last_output=op[1])
            own.load_integral(op[1])
        elif op[0] == "step_from":
            ref.set_auto_mode(False)
            ref.set_auto_mode(True, last_output=op[1])
            assert _same(own.step_from(op[1], op[2], op[3]), ref(op[2], dt=op[3]))
        elif op[0] == "track":
            p, _, d = ref.components
            ref.set_auto_mode(False)
            ref.set_auto_mode(True, last_output=op[1] - p - d)
            own.track(op[1])
        elif op[0] == "setpoint":
            ref.setpoint = own.setpoint = op[1]
        else:
            ref.tunings = op[1:]
            own.kp, own.ki, own.kd = op[1:]
        for x, y in zip(own.components, ref.components, strict=True):
            assert x == y  # 0 and 0.0 alike: the next sums are the same
