"""Shared test configuration: hypothesis profiles (HYPOTHESIS_PROFILE=deep for long runs)
and the schedule of parallel runs (markers `slow` and `rig`)."""

from __future__ import annotations

import os

import pytest
from _pytest.nodeid import NodeId
from hypothesis import HealthCheck, settings
from suite_schedule import deal_rig_lanes, slow_seconds

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# ------------------------------------------------------------------ parallel runs (xdist)
#
# `make test` runs the suite on several workers (pytest-xdist, `--dist loadgroup`). Every
# test that starts a server uses a free port and its own tmp_path, so any two can run
# side by side. Two markers shape the schedule:
#
# - `slow(seconds)`: waits on real time or real processes for many seconds; scheduled
#   first, the longest first (`seconds`: its wall time on a quiet machine, 10 if not
#   given), so the long ones do not start last and stretch the run.
# - `rig("scenario", ...)`: an emulated HIL rig that runs in real time against deadlines
#   (implies slow); the arguments name the hil/scenarios it runs side by side. Rigs are
#   dealt into RIG_LANES xdist groups, longest first into the lane with the least
#   real time so far (a scenario's `duration_s`), so at most that many run at once, the
#   lanes end together, and the rest of the suite gets the other workers and the CPU.

RIG_LANES = int(os.environ.get("HEARTH_RIG_LANES", "3"))  # the Makefile exports it


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rig(*scenarios): a real-time HIL rig test running "
                            "these hil/scenarios side by side (implies slow); at most "
                            "HEARTH_RIG_LANES of them run at once under xdist")
    config.pluginmanager.register(XdistGroups(), "hearth-xdist-groups")


class XdistGroups:
    """Make `--dist loadgroup` group again under pytest 9.

    pytest-xdist (3.8) tells its scheduler an item's group by appending "@group" to
    `item._nodeid`; pytest 9 keeps node ids in `item._id`, so the suffix never reached the
    node id and every `xdist_group` (the rig lanes, the browser and MicroPython groups) was
    silently spread over all workers (tests/integration/test_suite_schedule.py). Where xdist's own
    suffix did not take, this sets it."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        if not getattr(config.option, "loadgroup", False):
            return
        for it in items:
            names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                            for m in it.iter_markers("xdist_group")})
            if names and "@" not in it.nodeid and hasattr(it, "_id"):
                it._id = NodeId.parse(f"{it.nodeid}@{'_'.join(names)}")


@pytest.hookimpl(tryfirst=True)  # the groups must be there before xdist reads them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rigs = [it for it in items if it.get_closest_marker("rig") is not None]
    lane = deal_rig_lanes(rigs, RIG_LANES)
    for it in rigs:
        it.add_marker(pytest.mark.xdist_group(f"rig-lane-{lane[it.nodeid]}"))

    def rank(it: pytest.Item) -> tuple[int, float, int]:
        # xdist (--no-loadscope-reorder) hands out work in this order: the rig lanes (in
        # lane order), then the slow tests longest first, then the rest in file order.
        if it.get_closest_marker("rig") is not None:
            return 0, 0.0, lane[it.nodeid]
        if it.get_closest_marker("slow") is not None:
            return 1, -slow_seconds(it), 0
        return 2, 0.0, 0

    items.sort(key=rank)  # stable: file order within each rank
