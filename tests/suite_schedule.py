"""The suite's schedule under xdist (tests/conftest.py): how long a rig test holds its lane
and a slow test its worker, and the dealing of rigs into lanes. A module of its own so a
test can import it (every conftest.py is a module named `conftest`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "hil" / "scenarios"
RIG_START_S = 5.0  # the rig's emulators and `hearth run` starting, before the scenario
DEFAULT_RIG_S = 40.0
DEFAULT_SLOW_S = 10.0


def rig_seconds(item: pytest.Item) -> float:
    """Real time a rig test holds its lane: its longest scenario, plus the start."""
    mark = item.get_closest_marker("rig")
    names = [str(a) for a in mark.args] if mark is not None else []
    if not names:
        return DEFAULT_RIG_S
    durations = []
    for name in names:
        with (SCENARIOS / f"{name}.toml").open("rb") as f:
            durations.append(float(tomllib.load(f)["duration_s"]))
    return max(durations) + RIG_START_S


def slow_seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    if mark is None:
        return 0.0
    return float(mark.args[0] if mark.args else mark.kwargs.get("seconds", DEFAULT_SLOW_S))


def deal_rig_lanes(rigs: list[pytest.Item], lanes: int) -> dict[str, int]:
    """Node id -> lane: longest first, each into the lane with the least time so far."""
    load = [0.0] * max(lanes, 1)
    seconds = {it.nodeid: rig_seconds(it) for it in rigs}  # each reads scenario files
    out: dict[str, int] = {}
    for it in sorted(rigs, key=lambda it: seconds[it.nodeid], reverse=True):  # stable
        k = min(range(len(load)), key=lambda i: (load[i], i))
        load[k] += seconds[it.nodeid]
        out[it.nodeid] = k
    return out
