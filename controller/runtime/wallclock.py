"""UTC stamps for tick records that survive a step of the wall clock.

A Pi has no real-time clock: it boots with the time it last saved and NTP later steps it,
often by an hour or more; a wrong manual setting can step it back. Control runs on the
monotonic clock and never notices. The tick records do: the ledger accounts each tick's
energy at its UTC stamp, so a step back would stamp an hour of ticks inside intervals
already accounted (the writer drops them: energy lost), and a step forward is simply the
clock becoming right.

So records follow the wall clock while it agrees with monotonic time; a step forward is
followed (a gap in wall time, no energy lost, nothing counted twice); a step back is not:
records keep counting monotonic time from where they were (ahead of the wall clock by the
step) until the wall clock steps forward again or the process restarts, so no stamp ever
goes back and no interval is lost or doubled while it runs. Each step is logged. Left
open: a restart while held back starts at the wall clock, and the ledger writer then skips
samples up to what it already has (it logs that).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

log = logging.getLogger(__name__)


class RecordClock:
    def __init__(self, step_threshold_s: float) -> None:
        self.step_threshold_s = step_threshold_s
        self._last: tuple[float, float] | None = None  # record UTC s, monotonic s
        self._held_back = False  # the wall clock is behind the records (after a step back)
        self.steps: list[float] = []  # wall-clock steps seen, seconds (+ forward)

    def __call__(self, wall: datetime, mono_s: float) -> datetime:
        wall_s = wall.timestamp()
        if self._last is None:
            self._last = (wall_s, mono_s)
            return wall
        last_s, last_mono = self._last
        expect_s = last_s + max(mono_s - last_mono, 0.0)
        step_s = wall_s - expect_s
        if step_s > self.step_threshold_s:
            self._held_back = False
            self.steps.append(step_s)
            log.warning("wall clock stepped forward %.0f s: tick records follow it "
                        "(no energy is lost or counted twice)", step_s)
            out_s = wall_s
        elif step_s < -self.step_threshold_s:
            if not self._held_back:
                self.steps.append(step_s)
                self._held_back = True
                log.warning("wall clock stepped back %.0f s: tick records keep counting "
                            "monotonic time from %s (until the clock steps forward again or hearth "
                            "restarts)", -step_s,
                            datetime.fromtimestamp(expect_s, UTC).isoformat(
                                timespec="seconds"))
            out_s = expect_s
        else:
            if self._held_back:
                log.info("wall clock caught up with the records again")
                self._held_back = False
            out_s = max(wall_s, last_s)  # small NTP corrections: never a stamp going back
        self._last = (out_s, mono_s)
        return wall if out_s == wall_s else datetime.fromtimestamp(out_s, UTC)
