"""The service's seams: what it needs from devices, miners and the outside world.

Each port is non-blocking from the tick's point of view. Device pollers and miner drivers
run in their own asyncio tasks and keep their latest values; the tick only reads what is
there (a slow device shows up as a stale reading, never as a late tick) and hands the
miners their new commands without waiting for the writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple, Protocol

from controller.control.controller import StepDebug
from controller.control.overrides import Overrides
from controller.control.types import Commands, Measurements, MinerReading, Reading
from controller.runtime.market import TermsStatus


class MeasurementSource(Protocol):
    """Devices (Modbus acquisition, the satellite): the latest time-stamped readings."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readings(self) -> Mapping[str, Reading | None]:
        """Latest values keyed by `Measurements` field name (grid_power_w, soc_pct, ...)."""
        ...


class MinerFleet(Protocol):
    """The miner drivers behind one object."""

    async def start(self) -> None: ...

    async def stop(self, shutdown_state: str) -> None:
        """Put every miner in its shutdown state ("pause", "off" or "leave") and close."""
        ...

    def readings(self) -> Mapping[str, MinerReading]: ...

    def submit(self, commands: Commands) -> None:
        """Take the tick's commands; the writes happen in the background."""
        ...


class TickRecord(NamedTuple):
    """Everything one tick saw and decided, for the ledger, MQTT and the HMI."""

    at_utc: datetime
    monotonic_s: float
    measurements: Measurements
    commands: Commands
    overrides: Overrides
    debug: StepDebug | None
    work_s: float  # from snapshot to commands: the decision latency of this tick
    # The bitcoin terms in force and where they came from (live feed, MQTT, or the static
    # [bitcoin] fallback and why); None: the service has no terms feed.
    bitcoin: TermsStatus | None = None


class Publisher(Protocol):
    """Ledger, MQTT bridge, HMI: told about every tick, must not block it."""

    def publish(self, tick: TickRecord) -> None: ...

    async def close(self) -> None: ...
