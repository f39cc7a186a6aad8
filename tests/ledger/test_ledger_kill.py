"""SIGKILL during writes, 100 times: never a partial or duplicated interval, and the
next start completes the open interval, ending with exactly the uninterrupted ledger.

A zygote process (ledger_killkit.py) forks writer children that resume the ledger of a
5-day simulation, flushing after every 1-min sample; the test kills each child with
SIGKILL at a random moment 0-20 ms after its first commit (it is writing all the time),
and checks the database after every kill. A last child runs to the end; its ledger must
equal one written in one go.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ledger_killkit
import ledgerkit
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from controller.ledger.db import make_engine
from controller.ledger.query import Ledger
from controller.ledger.sim import write_sim_ledger
from controller.ledger.tables import INTERVAL_VALUE_COLUMNS

KIT = Path(ledger_killkit.__file__)
APP_NAME = f"hearth-killkit-{os.getpid()}"  # this run's writer children (PostgreSQL)
KILLS = 100
TIMEOUT_S = 120.0

pytestmark = pytest.mark.slow(20)  # each SIGKILL loop: 15-25 s


class Zygote:
    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(KIT), url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=ledger_killkit.ROOT, env={**os.environ, "HEARTH_KILLKIT_APP": APP_NAME})

    def line(self) -> list[str]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT_S)
        assert ready, "zygote did not answer"
        out = self.proc.stdout.readline()
        assert out, f"zygote exited (rc {self.proc.poll()})"
        return out.split()

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_backends_gone(engine: Engine) -> None:
    """On PostgreSQL, a killed child's server process may still be committing what the
    child sent just before it died. The kill is over when that backend is gone; a child
    started before then would read the older checkpoint, and the late commit would then
    (rightly) make it stop as a second writer. A restarted `hearth run` takes seconds to
    start; here the next child forks in microseconds."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 30.0
    q = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n")
    while True:
        with engine.connect() as conn:
            if not conn.execute(q, {"n": APP_NAME}).scalar():
                return
        assert time.monotonic() < deadline, "a killed writer's backend did not go away"
        time.sleep(0.005)


def check(engine: Engine, start_s: int, step_s: int = 60) -> float:
    """No duplicate or partial interval, none missing, checkpoint consistent with rows.
    Returns the end of the last committed sample (start_s if nothing yet)."""
    with engine.connect() as conn:
        exists = text("SELECT count(*) FROM information_schema.tables WHERE table_name = "
                      "'ledger_state' AND table_schema = current_schema()") \
            if engine.dialect.name == "postgresql" else \
            text("SELECT count(*) FROM sqlite_master WHERE name = 'ledger_state'")
        if not conn.execute(exists).scalar():
            return float(start_s)  # killed before the schema was committed
        rows = conn.execute(text("SELECT start_s, covered_s, duration_s FROM ledger_interval "
                                 "ORDER BY start_s")).all()
        state = conn.execute(text("SELECT last_end_s, state FROM ledger_state")).first()
        n_tel = conn.execute(text("SELECT count(*) FROM ledger_telemetry")).scalar()
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    starts = [int(r[0]) for r in rows]
    assert len(starts) == len(set(starts)), "duplicated interval"
    assert starts == [start_s + 900 * k for k in range(len(starts))], "missing interval"
    assert all(int(r[1]) == 900_000 and r[2] == 900 for r in rows), "partial interval"
    if state is None:
        assert not rows and not n_tel
        return float(start_s)
    last_end = float(state[0])
    st: dict[str, Any] = json.loads(state[1])
    open_start = st["acc"]["start_s"] if st["acc"] else None
    next_start = start_s + 900 * len(starts)
    assert open_start in (None, next_start), "checkpoint and rows disagree"
    assert last_end >= next_start
    assert n_tel + (1 if st["tel"] else 0) == (last_end - start_s) / step_s, "telemetry"
    return last_end


@pytest.mark.parametrize("kind", ledgerkit.BACKENDS)
def test_sigkill_during_writes_never_leaves_partial_or_duplicated_intervals(
        kind: str, tmp_path: Path) -> None:
    result = ledger_killkit.workload()
    start = int(result.trace.start_s)
    end = result.trace.end_s
    ref = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    write_sim_ledger(result, ref, flush_every_s=86_400, clock=lambda: 0)
    with ledgerkit.database(kind, tmp_path) as url:
        engine = create_engine(url, poolclass=NullPool)
        zyg = Zygote(url)
        rng = random.Random(20240605)
        killed = advanced = 0
        last = float(start)
        try:
            assert zyg.line()[0] == "ready"
            for _ in range(KILLS):
                zyg.send("run 60")
                first = zyg.line()
                if first == ["writing"]:
                    # The child (forked first) committed its first flush before the zygote
                    # printed its pid: the two share stdout (seen on a loaded machine).
                    word, pid = zyg.line()
                    msg = first
                else:
                    word, pid = first
                    msg = zyg.line()
                assert word == "pid"
                if msg == ["writing"]:  # it committed its first flush and goes on writing
                    select.select([], [], [], rng.uniform(0.0, 0.02))
                    with contextlib.suppress(ProcessLookupError):  # it may have finished
                        os.kill(int(pid), signal.SIGKILL)
                    msg = zyg.line()
                word, sig, code = msg
                if int(sig) == signal.SIGKILL:
                    killed += 1
                else:
                    assert int(code) == 0, "a writer child failed"
                wait_backends_gone(engine)
                now = check(engine, start)
                advanced += now > last
                last = now
            print(f"kills {killed}, progress {(last - start) / (end - start):.0%}")
            assert last < end, "the kill loop should stop before the ledger is complete"
            zyg.send("run 86400")  # one more start, left alone: completes everything
            assert zyg.line()[0] == "pid"
            assert zyg.line() == ["writing"]
            assert zyg.line()[1:] == ["0", "0"]
            assert check(engine, start) == end
        finally:
            zyg.close()
            engine.dispose()
        assert killed >= KILLS * 0.9
        assert advanced >= KILLS * 0.9, f"only {advanced} kills came after progress"
        for history in (False, True):
            got, want = _rows(url, history), _rows(ref, history)
            assert len(got) == 5 * 96 and got == want
        assert _telemetry(url) == _telemetry(ref)


def _rows(url: str, history: bool) -> list[tuple[Any, ...]]:
    led = Ledger.open(url)
    try:
        return [tuple(r[c] for c in INTERVAL_VALUE_COLUMNS)
                for r in led.intervals(history=history)]
    finally:
        led.close()


def _telemetry(url: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url, create=False)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT start_s, duration_s, pv_w, grid_w, miner_w, hashrate_ths, soc_pct, "
                "tank_c, import_price FROM ledger_telemetry ORDER BY start_s"))]
    finally:
        engine.dispose()
