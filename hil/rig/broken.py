"""`hearth run` with a deliberately broken policy, to prove the rig catches it.

`python -m hil.rig.broken no-stale-guard -- <hearth CLI args>` runs the normal CLI after
patching `Controller.step` so a stale grid reading is passed off as fresh (the stale-meter
guard is effectively removed). Only the HIL rig's self-test uses this; never a site.
"""

from __future__ import annotations

import sys
from typing import Any

from controller.cli import main as cli_main
from controller.control.controller import Controller
from controller.control.types import Measurements, Reading

BREAKS = ("no-stale-guard",)


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


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BREAKS:
        print(f"usage: python -m hil.rig.broken {{{','.join(BREAKS)}}} -- ARGS...",
              file=sys.stderr)
        return 2
    _no_stale_guard()
    rest = argv[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
