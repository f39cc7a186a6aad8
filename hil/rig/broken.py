"""`hearth run` with a deliberately broken policy, to prove the rig catches it.

`python -m hil.rig.broken no-stale-guard -- <hearth CLI args>` runs the normal CLI after
patching `Controller.step` so a stale grid reading is passed off as fresh (the stale-meter
guard is effectively removed). `ignore-reserve`: the battery policy always lets the miners
drain the battery and the reserve cap is gone. `no-clock-guard`: tick records carry the
raw wall clock (controller/runtime/wallclock.py bypassed), so a clock step back drops
ledger samples. `no-tank-guard`: the controller has no tank loop and no tank limits (the
miners heat the tank with whatever surplus there is; only the satellite's own cut-off is
left). `no-import-limit`: the miners' import limit is gone (the main fuse's and the
contract's). Only the HIL rig's self-test uses this; never a site.
"""

from __future__ import annotations

import sys
from typing import Any

from controller.cli import main as cli_main
from controller.control.controller import Controller
from controller.control.types import Measurements, Reading
from hil.rig.broken_mqtt import MQTT_BREAKS  # ignore-dr-cap, ignore-tank-stale, ...

BREAKS = ("no-stale-guard", "ignore-reserve", "no-clock-guard", "no-tank-guard",
          "no-import-limit", *MQTT_BREAKS)


def _no_stale_guard() -> None:
    orig = Controller.step
    last: dict[int, Reading] = {}

    def step(self: Controller, m: Measurements, now: float, *a: Any, **k: Any) -> Any:
        if m.grid_power_w is not None and now - m.grid_power_w.at_s < 1.0:
            last[id(self)] = m.grid_power_w
        elif id(self) in last:  # stale or missing: pretend the last value is current
            m = m._replace(grid_power_w=Reading(last[id(self)].value, now))
        return orig(self, m, now, *a, **k)

    Controller.step = step  # type: ignore[method-assign]


def _ignore_reserve() -> None:
    """The miners may always drain the battery, and the reserve cap is gone."""
    from controller.control import battery

    def update(self: battery.BatteryArbiter, soc_pct: float) -> battery.BatteryPolicy:
        self.policy = battery.BatteryPolicy.DRAIN
        return self.policy

    def reserve_cap_w(self: Any, soc_pct: float, battery_w: float, miner_w: float) -> None:
        return None

    battery.BatteryArbiter.update = update  # type: ignore[method-assign]
    battery.BatteryArbiter.reserve_cap_w = reserve_cap_w  # type: ignore[method-assign]


def _no_clock_guard() -> None:
    """Tick records stamped with the raw wall clock, whatever it does."""
    from controller.runtime import wallclock

    def call(self: wallclock.RecordClock, wall: Any, mono_s: float) -> Any:
        return wall

    wallclock.RecordClock.__call__ = call  # type: ignore[method-assign]


def _no_tank_guard() -> None:
    """No tank loop, no tank maximum, no stale-tank trip: the tank is not looked at."""
    orig = Controller.__init__

    def init(self: Controller, *a: Any, **k: Any) -> None:
        orig(self, *a, **k)
        self.tank_loop = None

    Controller.__init__ = init  # type: ignore[method-assign]


def _no_import_limit() -> None:
    """The miners may import whatever they like: the fuse is not looked at."""
    orig = Controller.__init__

    def init(self: Controller, *a: Any, **k: Any) -> None:
        orig(self, *a, **k)
        self._miner_import_limit_w = float("inf")

    Controller.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BREAKS:
        print(f"usage: python -m hil.rig.broken {{{','.join(BREAKS)}}} -- ARGS...",
              file=sys.stderr)
        return 2
    {"no-stale-guard": _no_stale_guard, "ignore-reserve": _ignore_reserve,
     "no-clock-guard": _no_clock_guard, "no-tank-guard": _no_tank_guard,
     "no-import-limit": _no_import_limit,
     **MQTT_BREAKS}[argv[0]]()
    rest = argv[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
