"""Miner drivers: one small class per firmware API behind the `MinerDriver` interface."""

from controller.miners.base import (
    Capabilities,
    Control,
    MinerDriver,
    MinerStatus,
    SetResult,
    State,
)

__all__ = ["Capabilities", "Control", "MinerDriver", "MinerStatus", "SetResult", "State"]
