"""`HmiPublisher`: the HMI as one of the service's publishers.

Called by the tick (`publish`, never blocks): it keeps the latest state for the API, a
24 h ring buffer of averaged points for the chart, and pushes both to every connected
browser. Each browser has a small queue of its own; a slow one loses its oldest messages
(the newest state is all a wall page needs), never the tick's time.

The state is built once per tick and serialised once, however many browsers listen.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from controller.config.models import SiteConfig
from controller.runtime.dr import DrSchedule
from controller.runtime.ports import TickRecord
from hmi.schemas import Flows, HistoryPoint, StateOut
from hmi.state import empty_state, state_of

log = logging.getLogger(__name__)

DAY_S = 86_400
QUEUE_SIZE = 32


@dataclass
class _Bucket:
    """The history step being filled: sums of the ticks seen in it."""

    start_s: float
    n: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, float | None] = field(default_factory=dict)

    def add(self, key: str, v: float | None) -> None:
        if v is None or math.isnan(v):
            return
        self.sums[key] = self.sums.get(key, 0.0) + v
        self.counts[key] = self.counts.get(key, 0) + 1

    def mean(self, key: str) -> float | None:
        n = self.counts.get(key, 0)
        return round(self.sums[key] / n, 1) if n else None

    def point(self) -> _Point:
        return _Point(self.start_s, self.mean("pv_w"), self.mean("load_w"),
                      self.mean("miners_w") or 0.0, self.mean("grid_w"),
                      self.last.get("soc_pct"), self.last.get("tank_c"),
                      self.last.get("import_price"))


class _Point(NamedTuple):
    """A chart point as kept in the ring: a plain tuple (~150 B, a pydantic model ~1 KB)."""

    t: float
    pv_w: float | None
    load_w: float | None
    miners_w: float
    grid_w: float | None
    soc_pct: float | None
    tank_c: float | None
    import_price: float | None

    def model(self) -> HistoryPoint:
        return HistoryPoint(**self._asdict())

    @classmethod
    def of(cls, p: HistoryPoint) -> _Point:
        return cls(**p.model_dump())


class Subscription:
    """One browser's live feed: `(event, json)` pairs, None when the HMI closes."""

    def __init__(self, hub: HmiPublisher, loop: asyncio.AbstractEventLoop) -> None:
        self.hub = hub
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = 0

    def offer(self, item: tuple[str, str] | None) -> None:
        """Runs on the subscriber's loop. Full: the oldest message gives way."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)

    async def next(self) -> tuple[str, str] | None:
        return await self.queue.get()

    def close(self) -> None:
        self.hub._unsubscribe(self)


class HmiPublisher:
    """Latest state, 24 h history, live fan-out. Implements controller.runtime.ports.Publisher."""

    def __init__(self, cfg: SiteConfig, history_step_s: int = 60) -> None:
        self.cfg = cfg
        self.step_s = history_step_s
        self.boot_id = secrets.token_hex(6)
        self.seq = 0
        self.last_tick: TickRecord | None = None
        self.dr: DrSchedule | None = None  # the service's DR schedule (`service.dr`), if any
        self._state = empty_state(cfg, self.boot_id)
        self._state_json = self._state.model_dump_json()
        self.points: deque[_Point] = deque(maxlen=math.ceil(DAY_S / history_step_s) + 1)
        self._bucket: _Bucket | None = None
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()  # publish() may come from another thread than the API
        self.closed = False

    # -- Publisher ------------------------------------------------------------------------

    def publish(self, tick: TickRecord) -> None:
        with self._lock:
            self.seq += 1
            self.last_tick = tick
            events = self.dr.events() if self.dr is not None else ()
            self._state = state_of(tick, self.cfg, self.seq, self.boot_id, events)
            self._state_json = self._state.model_dump_json()
            assert self._state.flows is not None
            point = self._add_history(tick, self._state.flows)
            subs = list(self._subs)
        self._fan_out(subs, ("state", self._state_json))
        if point is not None and subs:
            self._fan_out(subs, ("point", point.model().model_dump_json()))

    async def close(self) -> None:
        """The service stops: end every live feed (browsers reconnect to the next process)."""
        with self._lock:
            self.closed = True
            subs = list(self._subs)
        self._fan_out(subs, None)

    # -- reading --------------------------------------------------------------------------

    @property
    def state(self) -> StateOut:
        return self._state

    @property
    def state_json(self) -> str:
        return self._state_json

    def history(self, hours: float = 24.0) -> list[HistoryPoint]:
        """Closed points of the last `hours` before the newest one, oldest first."""
        with self._lock:
            pts = list(self.points)
        if not pts:
            return []
        since = pts[-1].t - hours * 3600
        return [p.model() for p in pts if p.t > since]

    def backfill(self, points: Iterable[HistoryPoint]) -> int:
        """Older points (from the ledger's telemetry after a restart), before ours."""
        with self._lock:
            first = self.points[0].t if self.points else math.inf
            older = sorted((_Point.of(p) for p in points if p.t < first), key=lambda p: p.t)
            room = (self.points.maxlen or 0) - len(self.points)
            take = older[-room:] if room > 0 else []
            self.points.extendleft(reversed(take))
            return len(take)

    # -- live feeds -----------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        sub = Subscription(self, asyncio.get_running_loop())
        with self._lock:
            if self.closed:
                sub.offer(None)
            self._subs.add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _fan_out(self, subs: list[Subscription], item: tuple[str, str] | None) -> None:
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for s in subs:
            if s.loop is here:
                s.offer(item)
            elif not s.loop.is_closed():
                s.loop.call_soon_threadsafe(s.offer, item)

    # -- history --------------------------------------------------------------------------

    def _add_history(self, tick: TickRecord, f: Flows) -> _Point | None:
        t = tick.at_utc.timestamp()
        start = math.floor(t / self.step_s) * self.step_s
        b = self._bucket
        closed = None
        if b is not None and start < b.start_s:
            # The wall clock went back (a Pi without RTC got its time late): start afresh.
            log.warning("HMI history: clock went back from %.0f to %.0f; chart restarts",
                        b.start_s, start)
            self.points.clear()
            b = None
        if b is not None and start > b.start_s:
            closed = b.point()
            self.points.append(closed)
            b = None
        if b is None:
            b = self._bucket = _Bucket(start)
        b.n += 1
        b.add("pv_w", f.pv_w)
        b.add("load_w", f.load_w)
        b.add("miners_w", f.miners_w)
        b.add("grid_w", f.grid_w)
        b.last["soc_pct"] = f.soc_pct
        m = tick.measurements
        b.last["tank_c"] = None if m.tank_temp_c is None else round(m.tank_temp_c.value, 2)
        b.last["import_price"] = m.import_price_per_kwh
        return closed
