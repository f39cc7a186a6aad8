"""Demand-response events from every source (MQTT, OpenADR), as one schedule.

An aggregator asks either to *reduce* (total miner power at most X W) or to *absorb*
(the miners take at least X W, under every hard cap), from a start time for a duration or
until cancelled. Sources put events into a `DrSchedule` (thread-safe: MQTT arrives on
paho's thread, OpenADR on the event loop); the service's command hook `DrHook` folds the
events active now into `Overrides.dr_cap_w` / `dr_absorb_w` at the start of each tick.

Latency: a cap must reach the miners within a second of the signal, so a change to the
schedule wakes the tick loop at once (`wake`), and the hook asks for a wake-up at the next
start or end of an event instead of waiting for the next regular tick.

Several events at once: the lowest cap and the highest absorption win; a cap always wins
over an absorption (the controller puts absorption under the hard caps).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from controller.control.overrides import Overrides

log = logging.getLogger(__name__)

Kind = Literal["reduce", "absorb"]


@dataclass(frozen=True)
class DrEvent:
    event_id: str
    source: str  # "mqtt" or "openadr"
    kind: Kind
    power_w: float  # the cap (reduce) or the floor (absorb)
    start_s: float  # UTC epoch seconds
    end_s: float | None  # UTC epoch seconds; None: until cancelled
    received_s: float  # UTC epoch seconds, when the signal arrived

    def active_at(self, t_s: float) -> bool:
        return self.start_s <= t_s and (self.end_s is None or t_s < self.end_s)

    def as_json(self) -> dict[str, Any]:
        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

        return {"event_id": self.event_id, "source": self.source, "kind": self.kind,
                "power_w": round(self.power_w, 1), "start": iso(self.start_s),
                "end": iso(self.end_s)}


@dataclass(frozen=True)
class DrNow:
    """What the schedule asks of the controller at one instant."""

    cap_w: float | None
    absorb_w: float | None
    events: tuple[DrEvent, ...]  # the active ones


class DrSchedule:
    """Events by (source, event_id). Every change calls the `on_change` callbacks."""

    def __init__(self, utc: Callable[[], float] = time.time) -> None:
        self.utc = utc
        self._events: dict[tuple[str, str], DrEvent] = {}
        self._lock = threading.Lock()
        self.on_change: list[Callable[[], None]] = []

    def put(self, ev: DrEvent) -> None:
        """Add an event, or replace the one with the same source and id (an update)."""
        with self._lock:
            old = self._events.get((ev.source, ev.event_id))
            self._events[(ev.source, ev.event_id)] = ev
        log.info("DR event %s %s from %s: %s %.0f W from %s to %s", ev.event_id,
                 "updated" if old else "accepted", ev.source, ev.kind, ev.power_w,
                 ev.as_json()["start"], ev.as_json()["end"] or "cancelled")
        self._changed()

    def cancel(self, source: str, event_id: str | None = None, kind: Kind | None = None
               ) -> list[DrEvent]:
        """Remove one event (by id) or every event of a source (and kind); returns them."""
        with self._lock:
            gone = [ev for key, ev in self._events.items() if key[0] == source
                    and (event_id is None or key[1] == event_id)
                    and (kind is None or ev.kind == kind)]
            for ev in gone:
                del self._events[(ev.source, ev.event_id)]
        for ev in gone:
            log.info("DR event %s from %s cancelled", ev.event_id, ev.source)
        if gone:
            self._changed()
        return gone

    def events(self) -> list[DrEvent]:
        with self._lock:
            return sorted(self._events.values(), key=lambda e: (e.start_s, e.event_id))

    def now(self, t_s: float) -> DrNow:
        """The active events at `t_s` and what they ask; ended events are dropped."""
        with self._lock:
            for key in [k for k, e in self._events.items()
                        if e.end_s is not None and e.end_s <= t_s]:
                log.info("DR event %s from %s ended", key[1], key[0])
                del self._events[key]
            active = tuple(e for e in self._events.values() if e.active_at(t_s))
        caps = [e.power_w for e in active if e.kind == "reduce"]
        floors = [e.power_w for e in active if e.kind == "absorb"]
        return DrNow(min(caps) if caps else None, max(floors) if floors else None, active)

    def next_change_after(self, t_s: float) -> float | None:
        """The next start or end of an event after `t_s` (UTC epoch seconds)."""
        with self._lock:
            times = [x for e in self._events.values() for x in (e.start_s, e.end_s)
                     if x is not None and x > t_s]
        return min(times) if times else None

    def _changed(self) -> None:
        for cb in list(self.on_change):
            try:
                cb()
            except Exception:  # a wake-up failing must not lose the event
                log.exception("DR change callback %r failed", cb)


class DrHook:
    """Service command hook: the schedule's active events -> Overrides, each tick.

    Edge-triggered: it changes `dr_cap_w` / `dr_absorb_w` only when what the schedule asks
    changes, so a cap set by another command source (the HMI) is not overwritten every tick.
    """

    def __init__(self, schedule: DrSchedule,
                 wake: Callable[[float], None] | None = None) -> None:
        self.schedule = schedule
        self.wake = wake  # wake(delay_s): the service ticks after delay_s
        self._cap_w: float | None = None
        self._absorb_w: float | None = None
        self.current: DrNow = DrNow(None, None, ())
        self._wake_for: float | None = None

    def __call__(self, ov: Overrides, now_s: float) -> Overrides:
        t = self.schedule.utc()
        cur = self.schedule.now(t)
        if cur.cap_w != self._cap_w:
            if cur.cap_w is not None or ov.dr_cap_w == self._cap_w:
                ov = ov._replace(dr_cap_w=cur.cap_w)
            log.info("DR cap now %s W (events %s)", _w(cur.cap_w), _ids(cur, "reduce"))
            self._cap_w = cur.cap_w
        if cur.absorb_w != self._absorb_w:
            if cur.absorb_w is not None or ov.dr_absorb_w == self._absorb_w:
                ov = ov._replace(dr_absorb_w=cur.absorb_w)
            log.info("DR absorption now %s W (events %s)", _w(cur.absorb_w),
                     _ids(cur, "absorb"))
            self._absorb_w = cur.absorb_w
        self.current = cur
        nxt = self.schedule.next_change_after(t)
        if self.wake is not None and nxt is not None and nxt != self._wake_for:
            self._wake_for = nxt
            self.wake(max(nxt - t, 0.0) + 0.005)  # just after, never just before
        return ov


    def event_ids(self) -> tuple[str, ...]:
        """The events in force at the last tick, as "source:event_id" (for the ledger)."""
        return tuple(sorted(f"{e.source}:{e.event_id}" for e in self.current.events))


def _w(x: float | None) -> str:
    return "none" if x is None else f"{x:.0f}"


def _ids(cur: DrNow, kind: Kind) -> str:
    return ",".join(f"{e.source}:{e.event_id}" for e in cur.events if e.kind == kind) or "-"
