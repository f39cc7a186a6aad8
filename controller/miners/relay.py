"""What every smart-relay driver shares: boot-time modelling and minimum on/off times.

A miner with no API (a stock S9 behind a plug) is on or off. After power-on it draws
`idle_power_w` and hashes nothing for `restart_s` (boot, fans, pool): the driver reports
`booting` for that long, whatever the plug measures. Relays and PSUs do not like being
chattered, so switching *on* sooner than `min_off_s` after switching off is deferred
(reported `deferred`, nothing sent); switching *off* is always obeyed because a hard limit
(import limit, tank max, stale meter) may be asking for it — it is logged when it cuts a
`min_on_s` short. Hash rate comes from an optional cgminer telemetry API, else it is
estimated from measured power and the miner's efficiency curve.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from typing import Any

from controller.miners.base import Control, DriverError, MinerDriver, SetResult, State, Telemetry
from controller.miners.cgminer import cgminer_telemetry

log = logging.getLogger(__name__)


class RelayDriver(MinerDriver):
    control = Control.ON_OFF

    def __init__(self, cfg: Any, *, telemetry: tuple[str, int] | None = None,
                 **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.telemetry = telemetry
        self._on: bool | None = None
        self._switched_s = -math.inf  # when we last switched (our clock)

    @abstractmethod
    async def _relay_get(self) -> tuple[bool, float | None, float | None]:
        """(output on, measured power W or None, relay temperature °C or None)."""

    @abstractmethod
    async def _relay_set(self, on: bool) -> None: ...

    async def _read(self) -> Telemetry:
        on, power, _relay_temp = await self._relay_get()
        now = self.clock()
        if self._on is None:
            self._on = on  # first contact: take the relay as we find it (already booted)
        elif on != self._on:
            log.warning("%s: relay is %s but was set %s (switched by hand or power loss)",
                        self.name, "on" if on else "off", "on" if self._on else "off")
            self._on, self._switched_s = on, now
        ths: float | None = None
        temp: float | None = None
        if self.telemetry is not None and on:
            try:
                ths, temp, _ = await cgminer_telemetry(*self.telemetry)
            except (OSError, ValueError, KeyError, IndexError, DriverError) as err:
                log.info("%s: telemetry API not answering (%s); estimating", self.name, err)
        booting = on and now - self._switched_s < self.cfg.restart_s
        estimated = power is None
        if power is None:
            power = (self.cfg.idle_power_w if booting else self.cfg.max_power_w) if on else 0.0
        if not on:
            state = State.PAUSED
        elif booting or (ths is not None and ths <= 0):
            state = State.BOOTING
        else:
            state = State.RUNNING
        if ths is None:
            ths = self.cfg.hashrate_ths_at(power) if state is State.RUNNING else 0.0
        return Telemetry(state, power, ths, temp, self.caps.max_power_w if on else 0.0,
                         "booting (modelled)" if booting else "", estimated)

    async def _switch(self, on: bool, requested_w: float) -> SetResult:
        now = self.clock()
        if self._on is None:
            st = await self.read()
            if st.state is State.UNAVAILABLE:
                return SetResult("unavailable", requested_w, None, None, st.detail)
        if self._on == on:
            return SetResult("unchanged", requested_w, None, None,
                             f"relay already {'on' if on else 'off'}")
        since = now - self._switched_s
        if on and since < self.cfg.min_off_s:
            return SetResult("deferred", requested_w, None, None,
                             f"min_off_s: off for {since:.0f} s of {self.cfg.min_off_s:.0f} s")
        if not on and since < self.cfg.min_on_s:
            log.warning("%s: switching off after %.0f s, before min_on_s %.0f s (a hard limit "
                        "wins)", self.name, since, self.cfg.min_on_s)
        try:
            await self._call(lambda: self._relay_set(on))
        except DriverError as err:
            return self._unavailable(requested_w, err)
        self._on, self._switched_s = on, now
        self._run = on
        self.writes_sent += 1
        st = await self.read()
        if st.state is State.UNAVAILABLE:
            return SetResult("sent", requested_w, None, None,
                             f"switched, but the readback failed: {st.detail}")
        if (st.state is State.PAUSED) == on:
            return SetResult("not_applied", requested_w, None, None,
                             f"relay reads {'off' if on else 'on'} after switching")
        sent = self.caps.max_power_w if on else 0.0
        return SetResult("sent", requested_w, sent, sent, "on" if on else "off")
