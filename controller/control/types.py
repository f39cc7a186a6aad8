"""What goes into a control step and what comes out of it.

Inputs are frozen for the whole tick (OpenEMS's rule): a `Measurements` snapshot is built
once, every value carries the time it was sampled, and the control core decides itself
whether a value is too old to trust. Time is a float in seconds on a monotonic clock
supplied by the caller (virtual in the simulator, `time.monotonic()` on the Pi).

The small records are NamedTuples: immutable like frozen dataclasses but several times
cheaper to build, which matters when a year is simulated at one-minute steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from controller.economics.hashprice import BtcTerms

_EMPTY: Mapping[str, MinerReading] = MappingProxyType({})  # shared, read-only


class Reading(NamedTuple):
    """One sampled value and the monotonic time it was sampled at."""

    value: float
    at_s: float


class MinerReading(NamedTuple):
    """What a miner reported about itself (driver readback)."""

    power_w: float
    hashrate_ths: float
    running: bool  # powered and not paused (booting counts as running)
    at_s: float
    temp_c: float | None = None
    can_pause: bool = True  # False: the firmware has no pause (held at its minimum instead)


class Measurements(NamedTuple):
    """A frozen snapshot for one tick. Missing devices are None, never 0."""

    grid_power_w: Reading | None = None  # import +, export -
    pv_power_w: Reading | None = None
    battery_power_w: Reading | None = None  # charge +, discharge -
    soc_pct: Reading | None = None
    tank_temp_c: Reading | None = None
    miners: Mapping[str, MinerReading] = _EMPTY
    import_price_per_kwh: float | None = None
    export_price_per_kwh: float | None = None
    dr_limit_w: float | None = None  # cap on total miner power from a DR signal
    utc_s: float | None = None  # wall-clock time of the snapshot (UTC epoch s), for schedules
    # What mining is worth now (hashvalue or network terms, BTC price, pool fee): the
    # trace's columns in the simulator, a market feed or `cmd/bitcoin_terms` on a live
    # site. None: the site file's static `[bitcoin]` terms. Pass the same object while the
    # terms do not change (the controller re-derives its break-even only on a new one).
    btc_terms: BtcTerms | None = None


class MinerCommand(NamedTuple):
    name: str
    run: bool  # False: pause (API miners) or switch off (relay miners)
    power_target_w: float  # 0 when not running
    # Why a miner does not run (or is about to stop), in the controller's own words, for
    # people: a stable code (docs/design.md lists them) and the seconds until it may
    # change, when that is known. Empty for a miner running normally.
    reason: str = ""
    reason_left_s: float | None = None
    # `export_pays`: what a kWh through this miner earns (BTC at the step's terms, plus its
    # heat while the tank wants it) and what exporting it pays, site currency per kWh.
    reason_worth_per_kwh: float | None = None
    reason_price_per_kwh: float | None = None


def new_command(name: str, run: bool, power_target_w: float, reason: str = "",
                reason_left_s: float | None = None) -> MinerCommand:
    """`MinerCommand(...)` for the step's hot path: a NamedTuple's `__new__` is Python code
    (called from the compiled control core, it was a sixth of a step); `tuple.__new__`
    builds the same tuple in C."""
    return tuple.__new__(MinerCommand, (name, run, power_target_w, reason, reason_left_s,
                                        None, None))


class Trip(NamedTuple):
    """A hard limit that acted this tick. `code` is stable, `reason` is for people."""

    code: str
    reason: str
    miner: str | None = None  # set when the trip concerns one miner


class Commands(NamedTuple):
    miners: tuple[MinerCommand, ...]
    total_target_w: float
    mode: str
    limiter: str  # what set the total: "grid", "tank", "import_limit", "stale", ...
    trips: tuple[Trip, ...] = ()

    def by_name(self) -> dict[str, MinerCommand]:
        return {c.name: c for c in self.miners}


def new_commands(miners: tuple[MinerCommand, ...], total_target_w: float, mode: str,
                 limiter: str, trips: tuple[Trip, ...]) -> Commands:
    """`Commands(...)` for the step's hot path (see `new_command`)."""
    return tuple.__new__(Commands, (miners, total_target_w, mode, limiter, trips))


class Policy(Protocol):
    """Anything that turns a snapshot into commands: the Hearth controller or a baseline."""

    def step(self, m: Measurements, now: float) -> Commands: ...
