"""The suite's own schedule (tests/suite_schedule.py, tests/suite_timing.py): real-time rig tests
stay in their lanes under `--dist loadgroup`, and every test's times are recorded.

pytest 9 ignored pytest-xdist's way of naming a group (the "@group" suffix), and the rig
lanes were silently spread over every worker; this runs a real two-worker session of
throw-away rig tests and reads which worker ran each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import suite_schedule

REPO = Path(__file__).resolve().parents[2]

PROBE = '''
import time
import pytest

@pytest.mark.rig
@pytest.mark.parametrize("k", range(6))
def test_rig(k):
    time.sleep(0.2)

@pytest.mark.parametrize("k", range(4))
def test_other(k):
    time.sleep(0.2)
'''


def _run(tmp_path: Path, lanes: int) -> dict[str, dict[str, set[str]]]:
    """group -> worker -> test names, from a 2-worker session with LANES rig lanes."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    prefix = tmp_path / f"times-{lanes}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(HEARTH_RIG_LANES=str(lanes), HEARTH_TEST_TIMES=str(prefix))  # a session of its own
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
         "-p", "conftest", "-p", "suite_timing", "-p", "no:cacheprovider",
         "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"),
         "--basetemp", str(tmp_path / f"t{lanes}"), str(tmp_path / "test_probe.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for f in tmp_path.glob(f"times-{lanes}.*.jsonl"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            ran[r["group"] or "-"][r["worker"]].add(r["nodeid"].split("::")[-1])
    return ran


@pytest.mark.slow(20)
def test_rig_lanes_hold_under_loadgroup_and_times_are_recorded(tmp_path: Path) -> None:
    ran = _run(tmp_path, 1)
    # One lane: all six rigs on a single worker, one after the other; the other worker
    # takes the rest (without the groups, load scheduling deals the rigs out to both).
    assert set(ran) == {"rig-lane-0", "-"}
    assert len(ran["rig-lane-0"]) == 1, dict(ran["rig-lane-0"])
    assert sum(len(v) for v in ran["rig-lane-0"].values()) == 6
    assert sum(len(v) for v in ran["-"].values()) == 4  # the rest: recorded too


class _Rig:
    """Just enough of a pytest item for the lane dealer: a node id and a rig marker."""

    def __init__(self, nodeid: str, *scenarios: str) -> None:
        self.nodeid = nodeid
        self._mark = pytest.mark.rig(*scenarios).mark

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return self._mark if name == "rig" else None


def test_rig_lanes_are_dealt_longest_first_by_their_scenarios_real_time() -> None:
    # tank-near-max and miner-ignores-target run 60 s, the others 36-40 s (+5 s start each).
    rigs = [_Rig("a", "meter-silent"), _Rig("b", "kill-restart", "modbus-garbage"),
            _Rig("c", "tank-near-max"), _Rig("d", "clock-jump", "miner-ignores-target"),
            _Rig("e", "broker-restart"), _Rig("f")]
    assert suite_schedule.rig_seconds(rigs[3]) == 65.0  # side by side: the longest one counts
    assert suite_schedule.rig_seconds(rigs[5]) == suite_schedule.DEFAULT_RIG_S  # no scenarios named
    lanes = suite_schedule.deal_rig_lanes(rigs, 2)  # type: ignore[arg-type]
    # The two 60-s rigs first, one per lane; then each into the emptier lane.
    assert lanes["c"] != lanes["d"]
    per_lane = [sum(suite_schedule.rig_seconds(r) for r in rigs if lanes[r.nodeid] == k)
                for k in (0, 1)]
    assert abs(per_lane[0] - per_lane[1]) <= 5.0, per_lane
    with pytest.raises(FileNotFoundError):
        suite_schedule.rig_seconds(_Rig("x", "no-such-scenario"))  # a typo fails collection
