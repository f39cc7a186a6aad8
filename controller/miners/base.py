"""The `MinerDriver` interface: declared capabilities, idempotent verified writes, no restarts.

Small miners are slow, quirky and easy to break, so every driver follows the same rules,
implemented once here and relied on by the control loop:

- **Declared capabilities** (`Capabilities`): continuous power target (range, resolution,
  settle time), stepped profiles, on/off only, or read-only; whether it can pause; how often
  it may be written (firmware that writes flash on every change is rate-limited).
- **Idempotent**: a target equal (within the resolution) to the one the firmware already
  holds is not sent again. The reference is what the firmware *reports* when it can, so a
  firmware that changed its own target (overheat back-off) is corrected on the next tick.
- **Verified by readback**: after a write the driver reads the firmware's target back and
  says so when it did not take (`SetResult.action == "not_applied"`).
- **Clamped or refused, never sent blindly**: targets outside the declared range are clamped
  to it (`"clamped"`); nonsense (NaN, negative) is refused; a firmware that rejects a target
  anyway is reported with its own words (`"refused"`).
- **Never raises into the control loop**: every I/O has a timeout; any failure (timeout,
  refused connection, garbage reply, auth) becomes state `unavailable` with a reason, and is
  logged. Auth expiry is handled by logging in again once.
- **Never restarts the miner to change power**: there is no restart/reboot call anywhere in
  the drivers; pause/resume (or the relay) is the only way power goes to zero.

Time is injected (`clock`), like everywhere else in Hearth; `at_s` of every reading is on
that clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar, TypeVar

from controller.config.models import MinerConfig
from controller.control.types import MinerCommand, MinerReading

log = logging.getLogger(__name__)
T = TypeVar("T")


class Control(StrEnum):
    """How a driver can change a miner's power."""

    CONTINUOUS = "continuous"  # a power target in W (Braiins OS, AxeOS via curve, Whatsminer %)
    STEPPED = "stepped"  # a few discrete levels (LuxOS profiles, Avalon work modes, Vnish)
    ON_OFF = "on_off"  # a relay: on at full power or off
    READ_ONLY = "read_only"  # telemetry only (cgminer/bmminer API)


class State(StrEnum):
    RUNNING = "running"  # hashing
    BOOTING = "booting"  # powered, warming up, not hashing yet
    PAUSED = "paused"  # told to pause / switched off
    OVERHEAT = "overheat"  # the firmware stopped hashing on its own (thermal protection)
    UNAVAILABLE = "unavailable"  # no valid answer: timeout, refused, garbage, auth


@dataclass(frozen=True, slots=True)
class Capabilities:
    control: Control
    min_power_w: float
    max_power_w: float
    resolution_w: float  # smallest target change worth sending
    settle_s: float  # expected time for measured power to reach a new target
    levels_w: tuple[float, ...] | None = None  # stepped / on-off levels
    can_pause: bool = True
    min_write_interval_s: float = 0.0  # > 0 where a write wears flash
    boot_s: float = 0.0  # resume / power-on until it hashes


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One readback, as the driver parsed it from the firmware's reply."""

    state: State
    power_w: float
    hashrate_ths: float
    temp_c: float | None = None
    target_w: float | None = None  # the target the firmware holds, when it reports one
    detail: str = ""
    power_estimated: bool = False  # no power readback: estimated from hash rate


@dataclass(frozen=True, slots=True)
class MinerStatus:
    name: str
    api: str
    state: State
    power_w: float
    hashrate_ths: float
    at_s: float
    temp_c: float | None = None
    target_w: float | None = None
    detail: str = ""
    power_estimated: bool = False

    def reading(self) -> MinerReading | None:
        """What the control core consumes; None when the miner is unavailable."""
        if self.state is State.UNAVAILABLE:
            return None
        return MinerReading(
            power_w=self.power_w,
            hashrate_ths=self.hashrate_ths,
            running=self.state in (State.RUNNING, State.BOOTING),
            at_s=self.at_s,
            temp_c=self.temp_c,
        )


@dataclass(frozen=True, slots=True)
class SetResult:
    """What a write did. `action` is stable (tests, logs, CLI); `reason` is for people."""

    action: str  # sent | clamped | unchanged | deferred | refused | not_applied | unsupported
    #              | unavailable
    requested_w: float | None = None
    sent_w: float | None = None
    confirmed_w: float | None = None  # the firmware's target read back after the write
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.action in ("sent", "clamped", "unchanged", "deferred")


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    converged: bool
    status: MinerStatus
    elapsed_s: float
    reason: str = ""


class DriverError(Exception):
    """The miner did not give a usable answer (reason says why)."""


class AuthExpired(DriverError):
    """Credentials/session no longer accepted: log in again once, then give up."""


class FirmwareRefused(DriverError):
    """The firmware answered but said no (out of range, not allowed, ...)."""


class MinerDriver(ABC):
    """One miner behind one API. Subclasses implement the small protocol hooks below."""

    api: ClassVar[str]
    control: ClassVar[Control]
    has_auth: ClassVar[bool] = False
    document: ClassVar[str] = ""  # the public document the driver was built from

    def __init__(
        self,
        cfg: MinerConfig,
        *,
        timeout_s: float = 3.0,
        min_write_interval_s: float = 0.0,
        settle_margin_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.timeout_s = timeout_s
        self.clock = clock
        self.caps = self._capabilities(min_write_interval_s, settle_margin_s)
        self._target_w: float | None = None  # firmware target as last sent/confirmed
        self._run: bool | None = None  # last run state sent/confirmed
        self._last_write_s = -math.inf
        self._prepared = False
        self._status = MinerStatus(self.name, self.api, State.UNAVAILABLE, 0.0, 0.0,
                                   clock(), detail="not read yet")
        self.writes_sent = 0

    # -- capabilities ---------------------------------------------------------------------

    @classmethod
    def can_pause_with(cls, settings: object) -> bool:
        """Whether this driver, with these validated `driver` settings, can pause its miner
        (stop it drawing power). The simulator's and the HIL rig's plant ask this
        (`factory.can_pause`), so they do only what the driver can do; it agrees with
        `caps.can_pause` of a driver built from the same settings (tested)."""
        return cls.control is not Control.READ_ONLY

    def _capabilities(self, min_write_interval_s: float, settle_margin_s: float) -> Capabilities:
        c = self.cfg
        span = c.max_power_w - c.min_power_w
        levels = c.levels_w()
        resolution = c.target_resolution_w if self.control is Control.CONTINUOUS else 0.0
        return Capabilities(
            control=self.control,
            min_power_w=c.min_power_w,
            max_power_w=c.max_power_w,
            resolution_w=max(resolution, 1.0) if self.control is Control.CONTINUOUS else 0.0,
            settle_s=span / c.ramp_w_per_s + settle_margin_s,
            levels_w=levels if self.control in (Control.STEPPED, Control.ON_OFF) else None,
            can_pause=self.control is not Control.READ_ONLY,
            min_write_interval_s=min_write_interval_s,
            boot_s=c.restart_s,
        )

    def _narrow_range(self, lo: float | None, hi: float | None) -> None:
        """The firmware told us its allowed range: never send outside the intersection."""
        c = self.caps
        new_lo = max(c.min_power_w, lo) if lo is not None else c.min_power_w
        new_hi = min(c.max_power_w, hi) if hi is not None else c.max_power_w
        if new_hi < new_lo:
            log.warning("%s: firmware range %s..%s W does not overlap the configured %s..%s W",
                        self.name, lo, hi, c.min_power_w, c.max_power_w)
            return
        if (new_lo, new_hi) != (c.min_power_w, c.max_power_w):
            log.info("%s: firmware allows %s..%s W; targets clamped to %s..%s W",
                     self.name, lo, hi, new_lo, new_hi)
            self.caps = replace(c, min_power_w=new_lo, max_power_w=new_hi)

    # -- protocol hooks (subclasses) ------------------------------------------------------

    @abstractmethod
    async def _read(self) -> Telemetry:
        """Fetch and parse telemetry; raise DriverError subclasses on anything unexpected."""

    async def _login(self) -> None:  # noqa: B027 - optional hook
        """Obtain a fresh token/session (drivers with auth)."""

    async def _prepare(self) -> None:  # noqa: B027 - optional hook
        """First contact: learn firmware limits etc. Called before the first write."""

    async def _write_target(self, target_w: float) -> None:
        raise FirmwareRefused(f"{self.api} cannot set a power target")

    async def _pause(self) -> None:
        raise FirmwareRefused(f"{self.api} cannot pause")

    async def _resume(self) -> None:
        raise FirmwareRefused(f"{self.api} cannot resume")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets/sessions."""

    # -- the guarded core -----------------------------------------------------------------

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        """One protocol operation: timeout, one re-login on auth expiry, errors normalised."""
        try:
            try:
                return await asyncio.wait_for(op(), self.timeout_s)
            except AuthExpired as err:
                log.info("%s: %s; logging in again", self.name, err)
                await asyncio.wait_for(self._login(), self.timeout_s)
                return await asyncio.wait_for(op(), self.timeout_s)
        except DriverError:
            raise
        except TimeoutError:
            raise DriverError(f"no answer within {self.timeout_s:g} s") from None
        except (OSError, EOFError) as err:
            raise DriverError(f"connection failed: {err.__class__.__name__}: {err}") from None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise DriverError(f"malformed reply: {err.__class__.__name__}: {err}") from None
        except Exception as err:  # client libraries raise their own types (aiohttp, paho)
            raise DriverError(f"{err.__class__.__name__}: {err}") from None

    async def read(self) -> MinerStatus:
        """Telemetry now. Never raises: a failure is state `unavailable` with the reason."""
        now = self.clock()
        try:
            t = await self._call(self._read)
        except DriverError as err:
            if self._status.state is not State.UNAVAILABLE or self._status.detail != str(err):
                log.warning("%s (%s): unavailable: %s", self.name, self.api, err)
            self._status = MinerStatus(self.name, self.api, State.UNAVAILABLE, 0.0, 0.0, now,
                                       detail=str(err))
            return self._status
        if (t.target_w is not None and self._target_w is not None
                and abs(t.target_w - self._target_w) > max(self.caps.resolution_w, 0.5)):
            log.warning("%s: firmware now holds %.0f W, not the %.0f W we set (%s); "
                        "will re-send", self.name, t.target_w, self._target_w,
                        t.detail or "changed by the firmware")
            self._target_w = t.target_w
        if self._target_w is None and t.target_w is not None:
            self._target_w = t.target_w  # first contact: what the firmware already holds
        if self._run is None:
            self._run = t.state is not State.PAUSED
        if t.state is State.OVERHEAT and self._status.state is not State.OVERHEAT:
            log.warning("%s: firmware thermal protection: %s", self.name, t.detail or "paused")
        self._status = MinerStatus(self.name, self.api, t.state, t.power_w, t.hashrate_ths, now,
                                   temp_c=t.temp_c, target_w=t.target_w, detail=t.detail,
                                   power_estimated=t.power_estimated)
        return self._status

    @property
    def status(self) -> MinerStatus:
        return self._status

    def plan(self, requested_w: float) -> tuple[float, bool]:
        """The target that would be sent for a request, and whether it was clamped."""
        c = self.caps
        lo, hi = c.min_power_w, c.max_power_w
        clamped = requested_w < lo - 1e-9 or requested_w > hi + 1e-9
        t = min(max(requested_w, lo), hi)
        if c.levels_w is not None:
            inside = [lv for lv in c.levels_w if lo - 1e-9 <= lv <= hi + 1e-9] or list(c.levels_w)
            below = [lv for lv in inside if lv <= t + 1e-9]
            t = max(below) if below else min(inside)
        elif c.control is Control.CONTINUOUS:
            t = float(round(t))
        return t, clamped

    async def set_power(self, requested_w: float) -> SetResult:
        """Move toward a power target. Idempotent, clamped, verified; never raises."""
        if self.control is Control.READ_ONLY:
            return self._refuse("unsupported", requested_w,
                                f"{self.api} is read-only telemetry: it cannot set power")
        if not math.isfinite(requested_w) or requested_w < 0:
            return self._refuse("refused", requested_w,
                                f"target {requested_w!r} W is not a finite power >= 0")
        if self.control is Control.ON_OFF:
            return await self._switch(requested_w > 0, requested_w)
        if requested_w == 0:
            return await self.pause()
        try:
            if not self._prepared:
                await self._call(self._prepare)
                self._prepared = True
        except FirmwareRefused as err:
            return self._refuse("refused", requested_w, f"firmware does not fit: {err}")
        except DriverError as err:
            return self._unavailable(requested_w, err)
        if self._status.state is State.OVERHEAT:
            return self._refuse("refused", requested_w,
                                "firmware thermal protection is active; not writing until it "
                                f"clears ({self._status.detail or 'overheat'})")
        target, clamped = self.plan(requested_w)
        if clamped:
            log.info("%s: %.0f W is outside %.0f..%.0f W: clamped to %.0f W", self.name,
                     requested_w, self.caps.min_power_w, self.caps.max_power_w, target)
        if self._target_w is not None and self._same(target, self._target_w):
            return SetResult("unchanged", requested_w, None, self._target_w,
                             "the firmware already holds this target")
        now = self.clock()
        wait = self._last_write_s + self.caps.min_write_interval_s - now
        if wait > 0:
            return SetResult("deferred", requested_w, None, self._target_w,
                             f"rate-limited (flash wear): next write allowed in {wait:.0f} s")
        try:
            await self._call(lambda: self._write_target(target))
        except FirmwareRefused as err:
            log.warning("%s: firmware refused %.0f W: %s", self.name, target, err)
            return SetResult("refused", requested_w, target, None, f"firmware refused: {err}")
        except DriverError as err:
            return self._unavailable(requested_w, err)
        self._last_write_s = now
        self.writes_sent += 1
        self._target_w = target
        return await self._verify(requested_w, target, "clamped" if clamped else "sent")

    async def _verify(self, requested_w: float, target: float, action: str) -> SetResult:
        status = await self.read()
        confirmed = status.target_w
        if status.state is State.UNAVAILABLE:
            return SetResult(action, requested_w, target, None,
                             f"sent, but the readback failed: {status.detail}")
        if confirmed is not None and not self._same(target, confirmed):
            self._target_w = confirmed
            log.warning("%s: sent %.0f W but the firmware reports %.0f W", self.name, target,
                        confirmed)
            return SetResult("not_applied", requested_w, target, confirmed,
                             f"firmware reports a target of {confirmed:.0f} W after the write")
        return SetResult(action, requested_w, target, confirmed,
                         f"clamped to {target:.0f} W" if action == "clamped" else "")

    def _same(self, a: float, b: float) -> bool:
        tol = self.caps.resolution_w / 2 if self.control is Control.CONTINUOUS else 0.5
        return abs(a - b) <= max(tol, 0.5)

    async def pause(self) -> SetResult:
        if self.control is Control.READ_ONLY:
            return self._refuse("unsupported", None, f"{self.api} is read-only telemetry")
        if self.control is Control.ON_OFF:
            return await self._switch(False, 0.0)
        if self._run is False:
            return SetResult("unchanged", 0.0, None, None, "already paused")
        if not self.caps.can_pause:
            # The best this firmware allows: its lowest power. Still reported as not done,
            # so nobody takes it for off (a relay is the way to switch such a board off).
            held = await self.set_power(self.caps.min_power_w)
            what = (f"held at its minimum {self.caps.min_power_w:.0f} W" if held.ok
                    else f"lowering it to its minimum failed ({held.reason})")
            return self._refuse("unsupported", 0.0, f"{self.api} firmware has no pause: {what}")
        try:
            await self._call(self._pause)
        except FirmwareRefused as err:
            return SetResult("refused", 0.0, None, None, f"firmware refused pause: {err}")
        except DriverError as err:
            return self._unavailable(0.0, err)
        self._run = False
        self.writes_sent += 1
        await self.read()
        return SetResult("sent", 0.0, 0.0, None, "paused")

    async def resume(self) -> SetResult:
        if self.control is Control.READ_ONLY:
            return self._refuse("unsupported", None, f"{self.api} is read-only telemetry")
        if self.control is Control.ON_OFF:
            return await self._switch(True, self.caps.max_power_w)
        if self._run is True:
            return SetResult("unchanged", None, None, None, "already running")
        if not self.caps.can_pause:
            self._run = True
            return SetResult("unchanged", None, None, None, f"{self.api} has no pause: running")
        try:
            await self._call(self._resume)
        except FirmwareRefused as err:
            return SetResult("refused", None, None, None, f"firmware refused resume: {err}")
        except DriverError as err:
            return self._unavailable(None, err)
        self._run = True
        self.writes_sent += 1
        await self.read()
        return SetResult("sent", None, None, None, "resumed")

    async def _switch(self, on: bool, requested_w: float) -> SetResult:
        """On/off drivers override this; the default refuses."""
        return self._refuse("unsupported", requested_w, f"{self.api} is not a relay")

    async def apply(self, cmd: MinerCommand) -> SetResult:
        """Carry out one control-loop command. Never raises."""
        if self._run is None:
            await self.read()
        if not cmd.run:
            return await self.pause()
        if self.control is Control.ON_OFF:
            return await self._switch(True, cmd.power_target_w)
        if self._run is not True and self.caps.can_pause:
            r = await self.resume()
            if not r.ok and r.action != "unchanged":
                return r
        return await self.set_power(cmd.power_target_w)

    async def settle(self, target_w: float, tolerance_w: float | None = None,
                     timeout_s: float | None = None, poll_s: float = 0.2) -> SettleOutcome:
        """Poll until measured power is within tolerance of a target (or time runs out)."""
        tol = tolerance_w if tolerance_w is not None else max(0.05 * target_w, 2.0)
        limit = timeout_s if timeout_s is not None else self.caps.settle_s + self.caps.boot_s
        start = self.clock()
        while True:
            st = await self.read()
            elapsed = self.clock() - start
            if st.state is not State.UNAVAILABLE and abs(st.power_w - target_w) <= tol:
                return SettleOutcome(True, st, elapsed)
            if elapsed >= limit:
                why = (f"still at {st.power_w:.0f} W ({st.state}) after {elapsed:.1f} s, "
                       f"expected {target_w:.0f} W within {limit:.1f} s")
                if st.state is State.UNAVAILABLE:
                    why = f"unavailable after {elapsed:.1f} s: {st.detail}"
                return SettleOutcome(False, st, elapsed, why)
            await asyncio.sleep(poll_s)

    def _refuse(self, action: str, requested_w: float | None, reason: str) -> SetResult:
        log.warning("%s: %s", self.name, reason)
        return SetResult(action, requested_w, None, None, reason)

    def _unavailable(self, requested_w: float | None, err: DriverError) -> SetResult:
        log.warning("%s (%s): write failed, miner unavailable: %s", self.name, self.api, err)
        self._status = MinerStatus(self.name, self.api, State.UNAVAILABLE, 0.0, 0.0,
                                   self.clock(), detail=str(err))
        return SetResult("unavailable", requested_w, None, None, str(err))
