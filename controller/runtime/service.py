"""`hearth run`: the tick loop that ties devices, the control core and the miners together.

One asyncio process. Every `tick_s` (monotonic schedule, no drift) the service freezes a
snapshot from the sources' latest readings, runs `Controller.step` on it, hands the
commands to the miner fleet and the record to the publishers. Nothing in a tick awaits
I/O: a slow device is a stale reading, a slow miner a late write, never a late tick; a
tick whose own work overruns is logged.

Start-up: miners are held off until the grid meter has a fresh reading, then for a random
0..`start_delay_max_s` so many sites do not switch in step. Stop (SIGTERM/SIGINT, or
`stop()`): miners get the configured shutdown state, publishers are closed (ledger flush,
MQTT `offline`), state is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controller.config.models import Mode, SiteConfig
from controller.control.controller import Controller
from controller.control.overrides import NO_OVERRIDES, Overrides
from controller.control.types import Measurements, Reading
from controller.runtime import state as state_file
from controller.runtime.dr import DrSchedule
from controller.runtime.market import BitcoinTermsFeed
from controller.runtime.ports import MeasurementSource, MinerFleet, Publisher, TickRecord
from controller.runtime.prices import PriceFeed
from controller.runtime.wallclock import RecordClock

log = logging.getLogger(__name__)

_FIELDS = ("grid_power_w", "pv_power_w", "battery_power_w", "soc_pct", "tank_temp_c")


@dataclass
class Clock:
    """Injected time: monotonic for control, UTC for records."""

    monotonic: Callable[[], float] = time.monotonic
    utc: Callable[[], datetime] = state_file.utc_now


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify, WatchdogSec) we are alive; a no-op outside systemd.

    Non-blocking: the notify socket is a datagram queue of a few messages, and a stalled
    reader must cost us a dropped message, never a blocked control loop.
    """
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.connect(addr)
            s.send(message.encode())
    except OSError as err:  # includes BlockingIOError: queue full
        log.debug("sd_notify(%s) dropped: %s", message, err)


class Service:
    def __init__(
        self,
        cfg: SiteConfig,
        sources: Sequence[MeasurementSource],
        fleet: MinerFleet,
        publishers: Sequence[Publisher] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
        prices: PriceFeed | None = None,
        bitcoin: BitcoinTermsFeed | None = None,
    ) -> None:
        self.cfg = cfg
        self.sources = list(sources)
        self.fleet = fleet
        self.publishers = list(publishers)
        self.clock = clock or Clock()
        # Record stamps survive a wall-clock step (NTP after a boot without RTC).
        self.record_clock = RecordClock(step_threshold_s=2.0 + 2 * cfg.control.tick_s)
        self.controller = Controller(cfg)
        # Prices each tick: the dynamic series ([tariffs] prices_file, cmd/prices), else
        # the constant [tariffs].
        self.prices = prices if prices is not None else PriceFeed(cfg)
        # Bitcoin terms each tick: the market feed or cmd/bitcoin_terms while fresh, else
        # the static [bitcoin] (None: always the static ones).
        self.bitcoin = bitcoin
        self.planner: object | None = None  # the day-ahead planner when [plan] enabled
        self.dr: DrSchedule | None = None  # the DR schedule (MQTT, OpenADR), for the HMI
        self.overrides: Overrides = NO_OVERRIDES  # set by commands (MQTT, HMI)
        # Command sources (MQTT, HMI): each turns the overrides into new ones at the start
        # of a tick, so commands apply between ticks and never in the middle of one.
        self.command_hooks: list[Callable[[Overrides, float], Overrides]] = []
        self.tick_s = cfg.control.tick_s
        self.state_path = Path(cfg.service.data_dir) / "state.json"
        delay_max = cfg.service.start_delay_max_s
        self.start_delay_s = (rng or random.Random()).uniform(0.0, delay_max)
        self._fresh_since: float | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # a command arrived: tick now (see wake())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_save = -float("inf")
        self._saved_running: frozenset[str] | None = None
        self.last: TickRecord | None = None
        self.ticks = 0
        self.overruns = 0
        self.tick_times_s: deque[float] = deque(maxlen=86_400)  # a day at 1 s, for stats
        self.exit_code = 0  # what `hearth run` exits with (safe mode: restart to apply)
        # Called after an installer saved the site file (MQTT, HMI); safe mode restarts.
        self.on_config_saved: Callable[[], None] | None = None
        self._restore()

    # -- state ----------------------------------------------------------------------------

    def _restore(self) -> None:
        data = state_file.load(self.state_path)
        if data is not None:
            state_file.import_state(self.controller.allocator, data, self.clock.monotonic(),
                                    self.clock.utc())
            log.info("restored controller state from %s", self.state_path)

    def save_state(self) -> None:
        data = state_file.export_state(self.controller.allocator, self.clock.monotonic(),
                                       self.clock.utc())
        try:
            state_file.save(self.state_path, data)
        except OSError as err:
            log.error("cannot save state to %s: %s", self.state_path, err)

    # -- one tick -------------------------------------------------------------------------

    def snapshot(self, now: float) -> Measurements:
        fields: dict[str, Reading | None] = dict.fromkeys(_FIELDS)
        for src in self.sources:
            for key, r in src.readings().items():
                if key in fields and r is not None:
                    old = fields[key]
                    if old is None or r.at_s > old.at_s:
                        fields[key] = r
        price = self.prices.prices_at(self.clock.utc().timestamp())
        return Measurements(
            grid_power_w=fields["grid_power_w"],
            pv_power_w=fields["pv_power_w"],
            battery_power_w=fields["battery_power_w"],
            soc_pct=fields["soc_pct"],
            tank_temp_c=fields["tank_temp_c"],
            miners=dict(self.fleet.readings()),
            import_price_per_kwh=price.import_per_kwh,
            export_price_per_kwh=price.export_per_kwh,
            utc_s=self.clock.utc().timestamp(),  # schedules are in wall-clock time
        )

    def _startup_hold(self, m: Measurements, now: float) -> str | None:
        # Island mode has no grid meter: there the battery reading must be fresh.
        island = (self.overrides.mode or self.cfg.control.mode) is Mode.ISLAND
        g = m.battery_power_w if island else m.grid_power_w
        fresh = g is not None and now - g.at_s <= self.cfg.control.stale_timeout_s
        if self._fresh_since is None:
            if not fresh:
                return "waiting for fresh measurements"
            self._fresh_since = now
            log.info("fresh measurements: miners may start in %.0f s", self.start_delay_s)
        left = self._fresh_since + self.start_delay_s - now
        if left > 0:
            return f"random start-up delay ({left:.0f} s left)"
        return None

    def tick(self) -> TickRecord:
        t0 = time.perf_counter()
        now = self.clock.monotonic()
        m = self.snapshot(now)
        bitcoin = None
        if self.bitcoin is not None:
            bitcoin = self.bitcoin.status(m.utc_s)
            if bitcoin.source != "config":  # None: the controller's static [bitcoin] terms
                m = m._replace(btc_terms=bitcoin.terms)
        for hook in self.command_hooks:
            try:
                self.overrides = hook(self.overrides, now)
            except Exception:  # a command source bug must never stop control
                log.exception("command source %r failed", hook)
        o = self.overrides
        hold = self._startup_hold(m, now)
        if hold is not None and o.hold_reason is None:
            o = o._replace(hold_reason=hold)
        cmds = self.controller.step(m, now, o)
        self.fleet.submit(cmds)
        for t in cmds.trips:
            if t.code != "hold":
                log.warning("trip %s: %s", t.code, t.reason)
        rec = TickRecord(self.record_clock(self.clock.utc(), now), now, m, cmds, o,
                         self.controller.debug,
                         time.perf_counter() - t0, bitcoin)
        for p in self.publishers:
            try:
                p.publish(rec)
            except Exception:  # a publisher bug must never stop control
                log.exception("publisher %r failed", p)
        # Save on every on/off switch (so a crash right after one cannot make the next
        # process cut a minimum on/off time short), and periodically for the targets.
        running = frozenset(c.name for c in cmds.miners if c.run)
        if (running != self._saved_running
                or now - self._last_save >= self.cfg.service.state_save_interval_s):
            self.save_state()
            self._last_save = now
            self._saved_running = running
        self.last = rec
        self.ticks += 1
        return rec

    # -- the loop -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def stop_soon(self, exit_code: int, delay_s: float = 1.0) -> None:
        """Stop from any thread after `delay_s` (time for an answer to go out), exiting
        with `exit_code` (safe mode: a saved config is applied by systemd's restart)."""
        self.exit_code = exit_code
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stop.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(loop.call_later, delay_s, self._stop.set)

    def wake(self, delay_s: float = 0.0) -> None:
        """Tick now (or in `delay_s`) instead of at the next regular time; from any thread.

        A demand-response cap must reach the miners within a second of the signal, so a
        command source wakes the loop rather than wait up to a whole `tick_s`. The regular
        schedule then restarts from that tick."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._wake_after, delay_s)
        except RuntimeError:  # the loop is closing
            return

    def _wake_after(self, delay_s: float) -> None:
        if delay_s <= 0 or self._loop is None:
            self._wake.set()
        else:
            self._loop.call_later(delay_s, self._wake.set)

    async def _sleep_until(self, next_t: float) -> bool:
        """Wait for the next tick time, a stop or a wake-up; True if woken."""
        timeout = max(0.0, next_t - self.clock.monotonic())
        if not self._wake.is_set():
            stop = asyncio.ensure_future(self._stop.wait())
            wake = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((stop, wake), timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                wake.cancel()
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not possible outside the main thread; the caller stops us then.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
                handled.append(sig)
        for src in self.sources:
            await src.start()
        await self.fleet.start()
        await self.prices.start()
        if self.bitcoin is not None:
            await self.bitcoin.start()
        sd_notify("READY=1")
        log.info("hearth running: site %s, tick %.1f s", self.cfg.site.id, self.tick_s)
        self._loop = loop
        next_t = self.clock.monotonic()
        warn_s = self.cfg.service.tick_overrun_warn_s
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                self.tick()
                took = time.perf_counter() - t0  # decision and publishing together
                self.tick_times_s.append(took)
                sd_notify("WATCHDOG=1")
                if took > warn_s:
                    self.overruns += 1
                    log.warning("tick took %.3f s (warn above %.3f s)", took, warn_s)
                next_t += self.tick_s
                behind = self.clock.monotonic() - next_t
                if behind > self.tick_s:  # we fell behind: skip, do not catch up in a burst
                    skipped = int(behind // self.tick_s)
                    log.warning("tick loop %.1f s behind: skipping %d tick(s)", behind, skipped)
                    next_t += skipped * self.tick_s
                if await self._sleep_until(next_t):
                    next_t = self.clock.monotonic()  # woken: tick now, schedule from here
        finally:
            await self.shutdown()
            for sig in handled:
                loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        sd_notify("STOPPING=1")
        state = self.cfg.service.shutdown_state
        log.info("stopping: miners -> %s", state)
        try:
            await self.fleet.stop(state)
        except Exception:
            log.exception("miner shutdown failed")
        for p in self.publishers:
            try:
                await p.close()
            except Exception:
                log.exception("publisher %r failed to close", p)
        await self.prices.stop()
        if self.bitcoin is not None:
            await self.bitcoin.stop()
        for src in self.sources:
            try:
                await src.stop()
            except Exception:
                log.exception("source %r failed to stop", src)
        self.save_state()
        log.info("stopped after %d ticks (%d overruns)", self.ticks, self.overruns)
        if self.tick_times_s:
            q = statistics.quantiles(self.tick_times_s, n=100) if len(
                self.tick_times_s) > 1 else [self.tick_times_s[0]] * 99
            log.info("tick time ms: p50=%.3f p90=%.3f p99=%.3f max=%.3f n=%d",
                     q[49] * 1e3, q[89] * 1e3, q[98] * 1e3, max(self.tick_times_s) * 1e3,
                     len(self.tick_times_s))
