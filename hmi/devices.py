"""The installer's test buttons: read one Modbus device, set one miner's power.

Both go through the production code (controller/devices acquisition, controller/miners
drivers) on a connection of their own, like `hearth read` and `hearth miners set`, and
report what the device actually answered. A device that allows only one Modbus client at
a time may refuse the test while the service polls it: the answer says so.

A miner's power set here is a commissioning write: while `hearth run` controls the miner,
its next command replaces it. For a lasting fixed power use the manual override.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from controller.config.models import SiteConfig
from controller.control.types import MinerCommand
from controller.devices.acquisition import Acquisition
from controller.errors import InputError, Problem
from controller.miners.base import MinerDriver
from controller.miners.factory import build_drivers
from hmi.schemas import DeviceReadOut, MinerTestOut

log = logging.getLogger(__name__)


class DeviceTester(Protocol):
    async def read_device(self, name: str) -> DeviceReadOut: ...

    async def set_miner_power(self, name: str, power_w: float) -> MinerTestOut: ...


class SiteDevices:
    """Tests against the devices of the site file as saved (so a device just added on the
    installer page can be tried before the service restarts with it)."""

    def __init__(self, cfg: SiteConfig | Callable[[], SiteConfig],
                 timeout_s: float = 20.0) -> None:
        self._cfg = cfg
        self.timeout_s = timeout_s

    @property
    def cfg(self) -> SiteConfig:
        return self._cfg() if callable(self._cfg) else self._cfg

    async def read_device(self, name: str) -> DeviceReadOut:
        cfg = self.cfg
        idx = next((i for i, d in enumerate(cfg.devices) if d.name == name), None)
        if idx is None:
            raise InputError("devices", [Problem("device", f"no device named {name!r}; the "
                             f"site has {[d.name for d in cfg.devices]}")])
        dev = cfg.devices[idx]
        try:
            acq = Acquisition([dev], source="site config")
        except InputError as err:
            raise InputError("devices", [Problem(p.where.replace("devices[0]",
                                                                 f"devices[{idx}]"), p.reason)
                                         for p in err.problems]) from None
        t0 = time.monotonic()
        try:
            try:
                ok = (await asyncio.wait_for(acq.read_once(), self.timeout_s))[name]
            except TimeoutError:
                ok = False
            p = acq.poller(name)
            error = p.state.last_error
            if not ok and error is None:
                error = f"no answer within {self.timeout_s:g} s"
            out = DeviceReadOut(
                device=name, ok=ok, map=p.map.id, endpoint=str(p.link.endpoint),
                status=str(p.state.status), error=error,
                values={q: r.value for q, r in p.readings.items()}, missing=dict(p.missing),
                took_s=round(time.monotonic() - t0, 3))
        finally:
            await acq.stop()
        log.info("installer test read of %s: %s", name, "ok" if out.ok else out.error)
        return out

    def _driver(self, name: str) -> MinerDriver:
        cfg = self.cfg
        idx = next((i for i, m in enumerate(cfg.miners) if m.name == name), None)
        if idx is None:
            raise InputError("miners", [Problem("miner", f"no miner named {name!r}; the site "
                             f"has {[m.name for m in cfg.miners]}")])
        one = cfg.model_copy(update={"miners": [cfg.miners[idx]]})
        try:
            return build_drivers(one)[name]
        except InputError as err:
            raise InputError(err.source, [Problem(p.where.replace("miners[0]", f"miners[{idx}]"),
                                                  p.reason) for p in err.problems]) from None

    async def set_miner_power(self, name: str, power_w: float) -> MinerTestOut:
        if not power_w >= 0:
            raise InputError("miners", [Problem("power_w", "must be a power >= 0 W")])
        d = self._driver(name)
        try:
            r = await asyncio.wait_for(
                d.apply(MinerCommand(name, power_w > 0, power_w)), self.timeout_s)
            st = await asyncio.wait_for(d.read(), self.timeout_s)
        except TimeoutError:
            return MinerTestOut(
                miner=name, ok=False, action="unavailable",
                reason=f"no answer within {self.timeout_s:g} s", requested_w=power_w,
                sent_w=None, confirmed_w=None, state="unavailable", power_w=0.0,
                hashrate_ths=0.0, temp_c=None, detail="")
        finally:
            await d.close()
        log.info("installer test write to %s: %g W -> %s %s", name, power_w, r.action, r.reason)
        return MinerTestOut(
            miner=name, ok=r.ok, action=r.action, reason=r.reason, requested_w=power_w,
            sent_w=r.sent_w, confirmed_w=r.confirmed_w, state=str(st.state),
            power_w=st.power_w, hashrate_ths=st.hashrate_ths, temp_c=st.temp_c,
            detail=st.detail)
