"""One poller per device: its own period, batched reads, retries, back-off, staleness.

Every value is stamped with the monotonic time its reply arrived, so the control core
sees how old it is; a device that fails keeps its last values with their old stamps (the
core then trips on staleness), and its status turns `stale` at the first failed request,
i.e. within its timeout. A failing device is retried ever more slowly (period × 2ⁿ, up to
`backoff_max_s`, like OpenEMS), so a dead inverter costs its shared bus one timeout every
few minutes instead of one per period, and never stops the other pollers.

Replies that are Modbus exceptions, garbage or sentinels never become numbers: the
first two fail the read (logged with the device name), a sentinel makes the quantity
missing (None), never 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from controller.config.devices import DeviceConfig
from controller.control.types import Reading
from controller.devices.link import Link, ReadError
from controller.devices.plan import Image, Plan, evaluate, plan_for_registers
from controller.devices.regmap import DeviceMap, Table
from controller.devices.sunspec import NotSunSpec, discover, plan_for_sunspec, walk

log = logging.getLogger(__name__)

# Exception codes that will not go away by asking again at once.
_PERMANENT = {0x01, 0x02, 0x03}
# Errors after which the rest of this poll is pointless (the device or link is down).
_DOWN = {"timeout", "garbled", "connect", "io"}


class Status(StrEnum):
    UNKNOWN = "unknown"  # not polled yet
    OK = "ok"
    STALE = "stale"  # the last request failed; values are aging


@dataclass
class DeviceState:
    status: Status = Status.UNKNOWN
    last_ok_at: float | None = None
    last_error: str | None = None
    failures: int = 0  # consecutive failed polls
    polls: int = 0
    failed_polls: int = 0
    next_poll_at: float = 0.0
    poll_starts: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    last_poll_s: float = 0.0  # how long the last poll took


class DevicePoller:
    def __init__(self, cfg: DeviceConfig, dmap: DeviceMap, link: Link,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.map = dmap
        self.link = link
        self.clock = clock
        self.name = cfg.name
        self.unit_id = cfg.unit_id if cfg.unit_id is not None else dmap.unit_id
        self.timeout_s = cfg.timeout_s if cfg.timeout_s is not None else dmap.timeout_s
        self.wanted = tuple(q for q in cfg.quantities() if q in dmap.measures)
        self.plan: Plan | None = (
            plan_for_registers(dmap, self.wanted) if dmap.kind == "registers" else None
        )
        self.state = DeviceState()
        self.readings: dict[str, Reading] = {}
        self.missing: dict[str, str] = {}  # quantity -> why the device has no value
        self._changed_at: dict[str, float] = {}
        self._frozen_logged: set[str] = set()

    # -- one poll ---------------------------------------------------------------------

    async def _read(self, table: Table, address: int, count: int) -> list[int]:
        return await self.link.read(self.unit_id, table, address, count, self.timeout_s)

    async def _discover(self) -> Plan:
        if self.cfg.sunspec_base is not None:
            regs = await self._read("holding", self.cfg.sunspec_base, 2)
            if tuple(regs) != (0x5375, 0x6E53):
                raise NotSunSpec(f"no SunS marker at {self.cfg.sunspec_base}")
            base = self.cfg.sunspec_base
            instances = await walk(self._read, base)
        else:
            base, instances = await discover(self._read,
                                             self.map.sunspec_bases)
        plan = plan_for_sunspec(self.map, instances, self.wanted)
        models = ", ".join(str(i.id) for i in instances)
        log.info("device %s: SunSpec at %d, models %s", self.name, base, models)
        for qty in plan.unresolved:
            self.missing[qty] = "the device has none of the SunSpec models this needs"
            log.info("device %s: %s not available (none of its models present)",
                     self.name, qty)
        return plan

    def _fail(self, what: str, err: Exception) -> None:
        self.state.status = Status.STALE
        self.state.last_error = f"{what}: {err}"
        log.warning("device %s: %s failed: %s", self.name, what, err)

    async def poll_once(self) -> bool:
        """Read everything once; True if every read succeeded."""
        st = self.state
        started = self.clock()
        st.polls += 1
        st.poll_starts.append(started)
        if self.plan is None:
            try:
                self.plan = await self._discover()
            except (ReadError, NotSunSpec) as err:
                self._fail("SunSpec discovery", err)
                return self._done(False, started)
        plan = self.plan
        image = Image()
        ok = True
        for block in plan.reads:
            what = f"read {block.table} {block.address}+{block.count}"
            down = False
            for attempt in range(self.cfg.retries + 1):
                try:
                    regs = await self._read(block.table, block.address, block.count)
                except ReadError as err:
                    self._fail(what, err)
                    down = err.kind in _DOWN
                    permanent = err.kind == "exception" and err.code in _PERMANENT
                    if attempt < self.cfg.retries and not permanent and err.kind != "connect":
                        await asyncio.sleep(min(0.05 * 2**attempt, self.timeout_s))
                        continue
                    ok = False
                    if err.kind == "exception" and err.code == 0x02 and \
                            self.map.kind == "sunspec":
                        self.plan = None  # the model layout changed: discover again
                    break
                image.put(block, regs, self.clock())
                down = False
                break
            if down:
                break  # the device or link is down: don't spend a timeout per block
        self._apply(plan, image)
        return self._done(ok, started)

    def _apply(self, plan: Plan, image: Image) -> None:
        values, missing = evaluate(plan, image)
        for qty, why in missing.items():
            if qty not in self.missing:
                log.info("device %s: %s not available (%s)", self.name, qty, why)
            self.missing[qty] = why
            self.readings.pop(qty, None)
        frozen_s = self.cfg.frozen_after_s
        for qty, (value, at_s) in values.items():
            if qty in self.missing:
                log.info("device %s: %s available again", self.name, qty)
                self.missing.pop(qty)
            prev = self.readings.get(qty)
            if frozen_s is not None:
                if prev is None or prev.value != value:
                    self._changed_at[qty] = at_s
                    self._frozen_logged.discard(qty)
                elif at_s - self._changed_at.get(qty, at_s) >= frozen_s:
                    # Unchanged to the last bit for too long: a frozen meter. Keep the
                    # time of the last change so the control core sees it age.
                    if qty not in self._frozen_logged:
                        log.warning("device %s: %s frozen at %g for %.0f s; treating it as "
                                    "stale", self.name, qty, value, at_s - self._changed_at[qty])
                        self._frozen_logged.add(qty)
                    at_s = self._changed_at[qty]
            self.readings[qty] = Reading(value, at_s)

    def _done(self, ok: bool, started: float) -> bool:
        st = self.state
        now = self.clock()
        st.last_poll_s = now - started
        if ok:
            if st.failures:
                log.info("device %s: reading again after %d failed poll(s)", self.name,
                         st.failures)
            st.status = Status.OK
            st.failures = 0
            st.last_ok_at = now
            st.last_error = None
        else:
            st.status = Status.STALE
            st.failures += 1
            st.failed_polls += 1
        return ok

    def next_delay_s(self) -> float:
        """Period when healthy; period × 2ⁿ after n failures, capped at backoff_max_s."""
        if self.state.failures == 0:
            return self.cfg.period_s
        return min(self.cfg.period_s * 2.0 ** min(self.state.failures, 30),
                   max(self.cfg.backoff_max_s, self.cfg.period_s))

    async def run(self) -> None:
        """Poll forever on the device's own period (cancel the task to stop)."""
        next_at = self.clock()
        while True:
            delay = next_at - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            ok = await self.poll_once()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Cancelled while a read was in flight, and the cancel got lost on the way
                # (Python 3.11's asyncio.wait_for, which pymodbus uses, returns a reply that
                # arrives in the same loop pass as the cancel): without this the poller
                # sleeps on and `hearth run` never stops on SIGTERM.
                raise asyncio.CancelledError
            now = self.clock()
            if ok:
                next_at += self.cfg.period_s
                if next_at < now:  # overran: skip the missed slots, keep the cadence
                    next_at = now
            else:
                next_at = now + self.next_delay_s()
                log.debug("device %s: next try in %.1f s", self.name, next_at - now)
            self.state.next_poll_at = next_at
