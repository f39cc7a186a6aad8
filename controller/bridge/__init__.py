"""MQTT bridge: telemetry, commands, installer provisioning, Home Assistant discovery.

The service (`hearth run`) uses it like this::

    store = ConfigStore(site_path)
    commands = CommandQueue()
    bridge = Bridge(store, on_command=commands, on_config=service.apply_config)
    bridge.start()
    every tick:
        for cmd in commands.drain(): service.apply(cmd)    # before Controller.step
        bridge.publish_state(StateSnapshot.from_tick(measurements, result, today=...))
    bridge.stop()

See docs/mqtt.md for topics, payloads and the Home Assistant entities.
"""

from controller.bridge.bridge import Bridge, BridgeStats, ConfigApplier
from controller.bridge.commands import (
    Command,
    CommandQueue,
    CommandRefused,
    CommandSink,
    PauseAll,
    SetDrCap,
    SetMinerEnabled,
    SetMinerPower,
    SetMode,
    SetTankTarget,
)
from controller.bridge.provisioning import ConfigStore
from controller.bridge.telemetry import MinerStatus, StateSnapshot, Today
from controller.bridge.topics import Topics

__all__ = [
    "Bridge",
    "BridgeStats",
    "Command",
    "CommandQueue",
    "CommandRefused",
    "CommandSink",
    "ConfigApplier",
    "ConfigStore",
    "MinerStatus",
    "PauseAll",
    "SetDrCap",
    "SetMinerEnabled",
    "SetMinerPower",
    "SetMode",
    "SetTankTarget",
    "StateSnapshot",
    "Today",
    "Topics",
]
