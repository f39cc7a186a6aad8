"""Glue between the bridge and `hearth run` (controller/runtime): the tick publisher and
the command -> Overrides mapping. Both small and pure enough to test without a service.

    commands = CommandQueue()
    bridge = Bridge(store, on_command=commands, on_config=...)
    service = Service(cfg, sources, fleet, publishers=[BridgePublisher(bridge)])
    # before each tick:
    for cmd in commands.drain():
        service.overrides = apply_command(service.overrides, cmd)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import MappingProxyType

from controller.bridge.bridge import Bridge
from controller.bridge.commands import (
    Command,
    PauseAll,
    SetDrAbsorb,
    SetDrCap,
    SetMinerEnabled,
    SetMinerPower,
    SetMode,
    SetTankTarget,
)
from controller.bridge.telemetry import StateSnapshot, Today
from controller.control.overrides import Overrides
from controller.runtime.ports import TickRecord

PAUSE_REASON = "paused over MQTT"
SAFE_MODE_PREFIX = "safe mode: "  # Overrides.hold_reason of a service in safe mode


def safe_mode_reason(hold_reason: str | None) -> str | None:
    """Why the service runs in safe mode, or None (controller/runtime/assemble.py)."""
    if hold_reason is not None and hold_reason.startswith(SAFE_MODE_PREFIX):
        return hold_reason.removeprefix(SAFE_MODE_PREFIX)
    return None  # Overrides.hold_reason set by cmd/pause_all


def apply_command(ov: Overrides, cmd: Command) -> Overrides:
    """The overrides after one command. A disabled miner is one held at 0 W (manual)."""
    if isinstance(cmd, SetMode):
        return ov._replace(mode=cmd.mode)
    if isinstance(cmd, SetTankTarget):
        return ov._replace(tank_target_c=cmd.target_c)
    if isinstance(cmd, SetDrCap):
        # duration_s is the service's to enforce (Overrides has no expiry): it must clear
        # the cap when the duration has passed.
        return ov._replace(dr_cap_w=cmd.cap_w)
    if isinstance(cmd, SetDrAbsorb):  # hearth run schedules these itself (runtime/dr.py)
        return ov._replace(dr_absorb_w=cmd.absorb_w)
    if isinstance(cmd, PauseAll):
        if cmd.paused:
            return ov._replace(hold_reason=ov.hold_reason or PAUSE_REASON)
        # Resuming never lifts a hold the service set itself (start-up delay, shutdown).
        return ov._replace(hold_reason=None) if ov.hold_reason == PAUSE_REASON else ov
    manual = dict(ov.manual_w)
    if isinstance(cmd, SetMinerPower):
        if cmd.power_w is None:
            manual.pop(cmd.miner, None)
        else:
            manual[cmd.miner] = cmd.power_w
    elif isinstance(cmd, SetMinerEnabled):
        if not cmd.enabled:
            manual[cmd.miner] = 0.0
        elif manual.get(cmd.miner) == 0.0:
            del manual[cmd.miner]
    return ov._replace(manual_w=MappingProxyType(manual))


def snapshot_of(tick: TickRecord, today: Today | None = None) -> StateSnapshot:
    ov = tick.overrides
    manual = dict(ov.manual_w)
    return StateSnapshot.from_tick(
        tick.measurements, tick.commands, today=today,
        paused=ov.hold_reason == PAUSE_REASON,
        dr_cap_w=ov.dr_cap_w,
        dr_absorb_w=ov.dr_absorb_w,
        tank_target_c=ov.tank_target_c if ov.tank_target_c is not None else
        ov.plan_tank_target_c,
        enabled={name: w != 0.0 for name, w in manual.items()},
        manual_w=manual,
        safe_mode=safe_mode_reason(ov.hold_reason),
        bitcoin=None if tick.bitcoin is None else tick.bitcoin.as_json(),
    )


class BridgePublisher:
    """The bridge as one of the service's publishers (controller.runtime.ports.Publisher)."""

    def __init__(self, bridge: Bridge, today: Callable[[], Today | None] | None = None) -> None:
        self.bridge = bridge
        self.today = today

    def publish(self, tick: TickRecord) -> None:
        """Called every tick: builds the snapshot and hands it over (never blocks)."""
        self.bridge.publish_state(snapshot_of(tick, self.today() if self.today else None))

    async def close(self) -> None:
        """Publish `offline` and disconnect, off the event loop."""
        await asyncio.to_thread(self.bridge.stop)
