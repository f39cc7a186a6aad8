"""Per-test wall and CPU time, for bench/suite_time.py (`-p suite_timing`).

The suite mostly waits (real-time rigs, brokers, browsers), so wall time alone does not say
whether a test is slow because it computes or because it sleeps. This plugin writes one JSON
line per test phase (setup, call, teardown) with the wall time, the CPU time of the worker
process and of its reaped child processes, the xdist worker and group, the markers and the
1-min load average, to ``$HEARTH_TEST_TIMES.<worker>.jsonl`` (``master`` without xdist).
Without HEARTH_TEST_TIMES it does nothing.

CPU of children counts only children that were waited for (``RUSAGE_CHILDREN``): a broker
started by a session fixture is booked to the test whose teardown reaps it.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Generator
from typing import IO, Any

import pytest

_ENV = "HEARTH_TEST_TIMES"


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


class _Recorder:
    """Appends one record per phase; opened lazily in the process that runs tests."""

    def __init__(self, base: str, worker: str) -> None:
        self._path = f"{base}.{worker}.jsonl"
        self._worker = worker
        self._out: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self._out is None:
            self._out = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        record["worker"] = self._worker
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


_recorder: _Recorder | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    base = os.environ.get(_ENV)
    if not base:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    if worker == "master" and config.pluginmanager.hasplugin("dsession"):
        return  # the xdist controller runs no tests
    _recorder = _Recorder(os.path.abspath(base), worker)  # tests may chdir


def pytest_unconfigure(config: pytest.Config) -> None:
    if _recorder is not None:
        _recorder.close()


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name"))


def _timed(item: pytest.Item, phase: str) -> Generator[None, None, None]:
    if _recorder is None:
        yield
        return
    cpu0, kids0 = _cpu()
    t0 = time.time()
    p0 = time.perf_counter()
    yield
    wall = time.perf_counter() - p0
    cpu1, kids1 = _cpu()
    _recorder.write({
        "nodeid": item.nodeid,
        "phase": phase,
        "start": t0,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu1 - cpu0, 4),
        "children_cpu_s": round(kids1 - kids0, 4),
        "markers": sorted({m.name for m in item.iter_markers()}
                          & {"slow", "rig", "asyncio", "skip", "xfail"}),
        "group": _group(item),
        "load1": round(os.getloadavg()[0], 2),
    })


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    gen = _timed(item, "setup")
    next(gen)
    try:
        return (yield)
    finally:
        next(gen, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    gen = _timed(item, "call")
    next(gen)
    try:
        return (yield)
    finally:
        next(gen, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    gen = _timed(item, "teardown")
    next(gen)
    try:
        return (yield)
    finally:
        next(gen, None)
