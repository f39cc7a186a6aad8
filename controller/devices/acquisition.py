"""The acquisition layer: every configured device, its poller, and the site's values.

`Acquisition` owns the shared connections and one poller per device. `start()` runs the
pollers as tasks (each on its own period); `read_once()` polls every device once
concurrently (the installer's `hearth read`). `fill(measurements)` puts the freshest
readings into a `Measurements` snapshot: grid power (import +), PV power, battery power
(charge +) and SoC, each with the monotonic time it was sampled, or None when no device
provides it. PV and battery power of several devices are added up (stamped with the
oldest of them); grid and SoC must come from exactly one device.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from controller.config.devices import DeviceConfig
from controller.control.types import Measurements, Reading
from controller.devices.link import LinkPool, SerialEndpoint, TcpEndpoint
from controller.devices.poller import DevicePoller
from controller.devices.regmap import SUMMABLE, DeviceMap, load_map
from controller.errors import InputError, Problem
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Acquisition:
    def __init__(self, devices: Sequence[DeviceConfig], *, source: str = "<config>",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pool = LinkPool()
        self.pollers: list[DevicePoller] = []
        self._tasks: list[asyncio.Task[None]] = []
        problems: list[Problem] = []
        maps: list[DeviceMap | None] = []
        names: set[str] = set()
        for i, dev in enumerate(devices):
            if dev.name in names:
                problems.append(Problem(f"devices[{i}].name", f"duplicate device name "
                                        f"{dev.name!r}"))
            names.add(dev.name)
            try:
                maps.append(load_map(dev.map))
            except InputError as err:
                problems.append(Problem(f"devices[{i}].map", "; ".join(
                    f"{err.source}: {p}" for p in err.problems)))
                maps.append(None)
                continue
        providers: dict[str, list[int]] = {}
        for i, (dev, dmap) in enumerate(zip(devices, maps, strict=True)):
            if dmap is None:
                continue
            got = [q for q in dev.quantities() if q in dmap.measures]
            if not got:
                problems.append(Problem(
                    f"devices[{i}].role",
                    f"map {dmap.id!r} measures none of what role {dev.role!r} needs "
                    f"(it has: {', '.join(dmap.measures)})"))
            for q in got:
                providers.setdefault(q, []).append(i)
        for q, idx in providers.items():
            if q not in SUMMABLE and len(idx) > 1:
                who = ", ".join(devices[i].name for i in idx)
                problems.append(Problem(f"devices[{idx[1]}].role",
                                        f"{q} would come from several devices ({who}); "
                                        "set `provides` so only one gives it"))
        if problems:
            raise InputError(source, problems)

        for i, (dev, dmap) in enumerate(zip(devices, maps, strict=True)):
            assert dmap is not None
            if dev.transport == "tcp":
                assert dev.host is not None
                ep: TcpEndpoint | SerialEndpoint = TcpEndpoint(dev.host, dev.port or dmap.port)
            else:
                assert dev.serial_port is not None
                ep = SerialEndpoint(dev.serial_port, dev.baudrate, dev.parity, dev.stopbits)
            try:
                link = self.pool.get(
                    ep,
                    connect_delay_s=dev.connect_delay_s if dev.connect_delay_s is not None
                    else dmap.connect_delay_s,
                    inter_request_delay_s=dev.inter_request_delay_s
                    if dev.inter_request_delay_s is not None else dmap.inter_request_delay_s,
                    connect_timeout_s=max(dev.timeout_s or dmap.timeout_s, 1.0),
                )
            except ValueError as err:
                raise InputError(source, [Problem(f"devices[{i}].serial_port", str(err))]) \
                    from None
            self.pollers.append(DevicePoller(dev, dmap, link, clock))
        self._providers = {q: [self.pollers[i] for i in idx] for q, idx in providers.items()}

    # -- running ----------------------------------------------------------------------

    async def start(self) -> None:
        for p in self.pollers:
            self._tasks.append(asyncio.create_task(p.run(), name=f"poll {p.name}"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.pool.close()

    async def __aenter__(self) -> Acquisition:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def read_once(self) -> dict[str, bool]:
        """Poll every device once, concurrently (devices on one link take turns)."""
        results = await asyncio.gather(*(p.poll_once() for p in self.pollers))
        return {p.name: ok for p, ok in zip(self.pollers, results, strict=True)}

    # -- values -----------------------------------------------------------------------

    def poller(self, name: str) -> DevicePoller:
        return next(p for p in self.pollers if p.name == name)

    def reading(self, quantity: str) -> Reading | None:
        """The site value of one quantity, or None if no device has a value for it."""
        provs = self._providers.get(quantity, [])
        if not provs:
            return None
        readings = []
        for p in provs:
            r = p.readings.get(quantity)
            if r is None:
                if quantity in p.missing and len(provs) > 1:
                    continue  # this device says it has none: the others still add up
                return None  # a summand is unknown: no honest total
            readings.append(r)
        if not readings:
            return None
        if quantity not in SUMMABLE:
            return readings[0]
        return Reading(sum(r.value for r in readings), min(r.at_s for r in readings))

    def readings(self) -> dict[str, Reading]:
        out = {}
        for q in self._providers:
            r = self.reading(q)
            if r is not None:
                out[q] = r
        return out

    def fill(self, m: Measurements | None = None) -> Measurements:
        """The Modbus fields of a snapshot; other fields of `m` are kept as they are."""
        base = m if m is not None else Measurements()
        return base._replace(
            grid_power_w=self.reading("grid_power_w"),
            pv_power_w=self.reading("pv_power_w"),
            battery_power_w=self.reading("battery_power_w"),
            soc_pct=self.reading("soc_pct"),
        )
