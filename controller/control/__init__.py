"""The pure control core: loops, battery policy, allocator, and the controller itself."""

from controller.control.controller import Controller
from controller.control.types import (
    Commands,
    Measurements,
    MinerCommand,
    MinerReading,
    Policy,
    Reading,
    Trip,
)

__all__ = [
    "Commands",
    "Controller",
    "Measurements",
    "MinerCommand",
    "MinerReading",
    "Policy",
    "Reading",
    "Trip",
]
