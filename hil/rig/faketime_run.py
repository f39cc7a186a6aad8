"""Run a Python module under libfaketime with a `time.sleep` that libfaketime cannot break.

`python -m hil.rig.faketime_run MODULE ARGS...` (the rig's clock_jump fault only). With
FAKETIME_DONT_FAKE_MONOTONIC=1 (only the wall clock moves, as on a real Pi), libfaketime
0.9.10 (Debian bookworm) rejects the absolute CLOCK_MONOTONIC deadline Python's
`time.sleep` passes to clock_nanosleep (EINVAL): any library sleeping would die of the
test tool, not of the clock step. This sleep waits in select() with a relative timeout
instead. The module itself (`controller.cli` or the broken-policy wrapper) is unmodified.
"""

from __future__ import annotations

import asyncio
import faulthandler
import runpy
import select
import signal
import sys
import time
from typing import SupportsIndex


def _sleep(secs: float | SupportsIndex) -> None:
    secs = float(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    end = time.monotonic() + secs
    while (left := end - time.monotonic()) > 0:
        select.select([], [], [], left)


def _dump_tasks(signum: int, frame: object) -> None:
    """SIGUSR1: print every thread's and every asyncio task's stack (the rig asks before
    killing a hung run). The threads come first: a shutdown blocked in a thread join or a
    lock has no running event loop to ask."""
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for t in asyncio.all_tasks(loop):
        print(f"--- task {t.get_name()}: {t!r}", file=sys.stderr, flush=True)
        t.print_stack(file=sys.stderr)


def main() -> None:
    if len(sys.argv) < 2:
        print("usage: python -m hil.rig.faketime_run MODULE [ARGS...]", file=sys.stderr)
        sys.exit(2)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    time.sleep = _sleep
    signal.signal(signal.SIGUSR1, _dump_tasks)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
