"""The pure control core: loops, battery policy, allocator, and the controller itself.

Its modules run compiled (mypyc, `controller/native.py`) when a build matching these very
sources exists, else interpreted: the folder of a matching build goes ahead of the
sources on this package's path before any submodule is imported.
"""

from controller.native import state as _native_state

_native_folder, NATIVE_STATE = _native_state()
if _native_folder is not None:
    __path__.insert(0, str(_native_folder))

from controller.control.controller import Controller  # noqa: E402 (after the path)
from controller.control.types import (  # noqa: E402
    Commands,
    Measurements,
    MinerCommand,
    MinerReading,
    Policy,
    Reading,
    Trip,
)

__all__ = [
    "NATIVE_STATE",
    "Commands",
    "Controller",
    "Measurements",
    "MinerCommand",
    "MinerReading",
    "Policy",
    "Reading",
    "Trip",
]
