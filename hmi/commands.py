"""Commands from the page back to the service: validated here, applied as `Overrides`.

The service keeps one immutable `controller.control.overrides.Overrides` value and feeds
it to every control step (hard limits still win). The HMI reaches it through a port of two
methods, so the same code drives the real `Service`, the demo, or a test:

    class OverridesPort(Protocol):
        def get(self) -> Overrides: ...
        def set(self, overrides: Overrides) -> None: ...

A command is checked against the site config first; a bad one raises `InputError` naming
the field and changes nothing. Every accepted and refused command is logged with who
asked. The HMI runs on the service's event loop, so a change lands between two ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

from controller.config.models import Actuation, Mode, SiteConfig
from controller.control.overrides import Overrides
from controller.errors import InputError, Problem
from hmi.schemas import OverridesOut
from hmi.state import MODE_WORDS, is_service_hold

log = logging.getLogger(__name__)

PAUSE_REASON = "paused from the wall panel"


class OverridesPort(Protocol):
    def get(self) -> Overrides: ...

    def set(self, overrides: Overrides) -> None: ...


class ServiceOverrides:
    """The port onto `controller.runtime.service.Service.overrides`."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def get(self) -> Overrides:
        o: Overrides = self.service.overrides
        return o

    def set(self, overrides: Overrides) -> None:
        self.service.overrides = overrides


class MemoryOverrides:
    """A port that only remembers (tests, an HMI without a service)."""

    def __init__(self) -> None:
        self.value = Overrides()

    def get(self) -> Overrides:
        return self.value

    def set(self, overrides: Overrides) -> None:
        self.value = overrides


def _refuse(source: str, field: str, reason: str, who: str) -> InputError:
    log.warning("refused command %s from %s: %s: %s", source, who, field, reason)
    return InputError(source, [Problem(field, reason)])


class CommandHandler:
    def __init__(self, cfg: SiteConfig, port: OverridesPort,
                 utc: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.cfg = cfg
        self.port = port
        self.utc = utc
        self.dr_until: datetime | None = None
        self._dr_timer: asyncio.TimerHandle | None = None

    def _apply(self, what: str, who: str, change: Callable[[Overrides], Overrides]) -> None:
        before = self.port.get()
        after = change(before)
        self.port.set(after)
        log.info("command %s from %s", what, who)

    # -- resident -------------------------------------------------------------------------

    def mode(self, mode: str, who: str) -> str:
        src = "commands/mode"
        why = self.cfg.mode_refusal(mode)
        if why is not None:
            raise _refuse(src, "mode", why, who)
        self._apply(f"mode={mode}", who, lambda o: o._replace(mode=Mode(mode)))
        return f"Mode: {MODE_WORDS[mode]}"

    def pause(self, paused: bool, who: str) -> str:
        def change(o: Overrides) -> Overrides:
            if paused:
                return o._replace(hold_reason=o.hold_reason or PAUSE_REASON)
            # The service's own start-up holds never live in its overrides; anything there
            # is a pause someone asked for (here or over MQTT), so resume lifts it.
            return o if is_service_hold(o.hold_reason) else o._replace(hold_reason=None)

        self._apply(f"pause={paused}", who, change)
        return "Miners paused" if paused else "Miners may run again"

    def tank_target(self, target_c: float | None, who: str) -> str:
        src = "commands/tank-target"
        t = self.cfg.tank
        if t is None:
            raise _refuse(src, "target_c", "this site has no tank", who)
        if target_c is not None and not t.min_c < target_c < t.max_c:
            raise _refuse(src, "target_c", f"must be above the tank's min ({t.min_c:g} °C) "
                                           f"and below its max ({t.max_c:g} °C)", who)
        self._apply(f"tank_target={target_c}", who, lambda o: o._replace(tank_target_c=target_c))
        return f"Tank target {target_c:g} °C" if target_c is not None else \
            f"Tank target back to {t.target_c:g} °C"

    # -- installer ------------------------------------------------------------------------

    def miner_power(self, miner: str, power_w: float | None, who: str) -> str:
        src = "commands/miner-power"
        m = next((x for x in self.cfg.miners if x.name == miner), None)
        if m is None:
            raise _refuse(src, "miner", f"no miner named {miner!r}; the site has "
                                        f"{[x.name for x in self.cfg.miners]}", who)
        if power_w is not None and power_w != 0:
            levels = m.levels_w()
            if power_w < 0:
                raise _refuse(src, "power_w", "must be 0 (off), null (automatic) or positive",
                              who)
            if m.actuation is Actuation.RELAY and power_w != m.max_power_w:
                raise _refuse(src, "power_w", f"{m.name} is switched by a relay: 0 or "
                                              f"{m.max_power_w:g} W", who)
            if levels is not None and not any(math.isclose(power_w, lv) for lv in levels):
                raise _refuse(src, "power_w", f"{m.name} runs only at "
                                              f"{', '.join(f'{x:g}' for x in levels)} W (or 0)",
                              who)
            if not m.min_power_w <= power_w <= m.max_power_w:
                raise _refuse(src, "power_w", f"must be 0 or within {m.min_power_w:g}.."
                                              f"{m.max_power_w:g} W for {m.name}", who)

        def change(o: Overrides) -> Overrides:
            manual = dict(o.manual_w)
            if power_w is None:
                manual.pop(m.name, None)
            else:
                manual[m.name] = float(power_w)
            return o._replace(manual_w=MappingProxyType(manual))

        self._apply(f"miner_power {m.name}={power_w}", who, change)
        if power_w is None:
            return f"{m.name}: automatic"
        return f"{m.name}: held at {power_w:g} W" if power_w else f"{m.name}: kept off"

    def dr_cap(self, cap_w: float | None, duration_s: float | None, who: str) -> str:
        src = "commands/dr-cap"
        if cap_w is not None and cap_w < 0:
            raise _refuse(src, "cap_w", "must be at least 0 W, or null for no cap", who)
        if cap_w is None and duration_s is not None:
            raise _refuse(src, "duration_s", "only applies to a cap (cap_w is null)", who)
        if self._dr_timer is not None:
            self._dr_timer.cancel()
            self._dr_timer = None
        self.dr_until = None
        self._apply(f"dr_cap={cap_w} for {duration_s} s", who,
                    lambda o: o._replace(dr_cap_w=cap_w))
        if cap_w is not None and duration_s is not None:
            self.dr_until = self.utc() + timedelta(seconds=duration_s)
            with contextlib.suppress(RuntimeError):  # no loop: the caller clears it
                self._dr_timer = asyncio.get_running_loop().call_later(
                    duration_s, self._dr_expired, cap_w)
        if cap_w is None:
            return "No cap on the miners"
        return f"Miners capped at {cap_w:g} W" + (f" for {duration_s:g} s" if duration_s else "")

    def _dr_expired(self, cap_w: float) -> None:
        self._dr_timer = None
        self.dr_until = None
        if self.port.get().dr_cap_w == cap_w:
            self.port.set(self.port.get()._replace(dr_cap_w=None))
            log.info("DR cap %g W expired", cap_w)

    # -- reading --------------------------------------------------------------------------

    def overrides(self) -> OverridesOut:
        o = self.port.get()
        return OverridesOut(
            mode=None if o.mode is None else o.mode.value,
            paused=o.hold_reason is not None and not is_service_hold(o.hold_reason),
            hold_reason=o.hold_reason, tank_target_c=o.tank_target_c, dr_cap_w=o.dr_cap_w,
            dr_cap_until=None if self.dr_until is None
            else self.dr_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            manual_w=dict(o.manual_w))

    def close(self) -> None:
        if self._dr_timer is not None:
            self._dr_timer.cancel()
