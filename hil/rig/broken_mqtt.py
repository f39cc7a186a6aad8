"""Broken policies for the MQTT side of the rig's self-test (used by hil/rig/broken.py).

- `ignore-dr-cap`: `Controller.step` never sees a demand-response cap (the MQTT command's
  override and a measured DR limit are dropped), so `dr_deadline` must fail.
- `ignore-tank-stale`: a stale tank temperature is passed off as fresh (the last value the
  satellite sent, re-stamped now), so `tank_stale_to_zero` must fail.
- `mqtt-blocks-control`: the bridge publisher waits for the broker inside the tick, a
  classic bug that stops control during an outage, so `control_without_mqtt` must fail.
Only the rig's self-test runs these; never a site.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.control.controller import Controller
from controller.control.overrides import NO_OVERRIDES
from controller.control.types import Measurements, Reading


def _ignore_dr_cap() -> None:
    orig = Controller.step

    def step(self: Controller, m: Measurements, now: float, o: Any = NO_OVERRIDES,
             *a: Any, **k: Any) -> Any:
        return orig(self, m._replace(dr_limit_w=None), now, o._replace(dr_cap_w=None),
                    *a, **k)

    Controller.step = step  # type: ignore[method-assign]


def _ignore_tank_stale() -> None:
    orig = Controller.step
    last: dict[int, Reading] = {}

    def step(self: Controller, m: Measurements, now: float, *a: Any, **k: Any) -> Any:
        t = m.tank_temp_c
        if t is not None and now - t.at_s < 1.0:
            last[id(self)] = t
        elif id(self) in last:  # stale or missing: pretend the last value is current
            m = m._replace(tank_temp_c=Reading(last[id(self)].value, now))
        return orig(self, m, now, *a, **k)

    Controller.step = step  # type: ignore[method-assign]


def _mqtt_blocks_control() -> None:
    from controller.bridge.service_glue import BridgePublisher

    orig = BridgePublisher.publish

    def publish(self: BridgePublisher, tick: Any) -> None:
        while not self.bridge.connected:  # blocks the event loop: no ticks, no control
            time.sleep(0.05)
        orig(self, tick)

    BridgePublisher.publish = publish  # type: ignore[method-assign]


MQTT_BREAKS: dict[str, Callable[[], None]] = {
    "ignore-dr-cap": _ignore_dr_cap, "ignore-tank-stale": _ignore_tank_stale,
    "mqtt-blocks-control": _mqtt_blocks_control}
