"""Zygote for the SIGKILL test: imports everything and simulates once, then forks one
writer child per command so the test can kill -9 children at ~100 per few seconds (a
fresh Python per kill would spend most of its time importing).

Protocol on stdin/stdout, one line each:
  -> "ready <rows>"                once the workload is simulated
  <- "run <flush_s>"               fork a child writing the ledger (resuming) ...
  -> "pid <pid>"                   ... whose pid the test may kill
  -> "writing"                     (from the child) its first flush is committed
  -> "done <signal> <exit code>"   when the child is gone (signal 0 = it exited)
  <- "quit"

Run: python tests/ledger/ledger_killkit.py DATABASE_URL
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from controller.config import load_site  # noqa: E402
from controller.ledger.db import make_engine  # noqa: E402
from controller.ledger.sim import write_sim_ledger  # noqa: E402
from controller.ledger.writer import LedgerWriter  # noqa: E402
from controller.sim.runner import SimResult, simulate  # noqa: E402
from controller.trace.reader import NUMBER_COLUMNS, Trace, read_trace  # noqa: E402

DAYS = 5
APP_NAME = os.environ.get("HEARTH_KILLKIT_APP", "hearth-killkit")
"""PostgreSQL application_name of the writer children: the test waits until no backend
of that name is left before it checks the database and starts the next child. The test
makes it unique per run (HEARTH_KILLKIT_APP), so another run against the same server
cannot hold it up."""


def workload(days: int = DAYS) -> SimResult:
    """The shipped spring day (1-min steps) repeated `days` times, simulated."""
    cfg = load_site(ROOT / "hil" / "sites" / "house-10kwp.toml")
    day = read_trace(ROOT / "hil" / "traces" / "house-spring-day.csv", cfg)
    cols = {c: np.tile(getattr(day, c), days) for c in NUMBER_COLUMNS}
    t = np.concatenate([day.time_s + k * 86_400.0 for k in range(days)])
    tr = Trace(time_s=t, step_s=day.step_s, source=f"{days} x spring day", **cols)
    return simulate(cfg, tr, progress=False)


def warm_up(result: SimResult, url: str) -> None:
    """Do once here what every child would otherwise do first (import the database
    driver, read the migration scripts), and freeze the heap so children do not copy it
    page by page when their garbage collector walks it."""
    with tempfile.TemporaryDirectory() as d:
        write_sim_ledger(result, f"sqlite:///{d}/warm.sqlite3", flush_every_s=86_400)
    make_engine(url).dispose()  # imports the DBAPI module (psycopg: ~60 ms)
    gc.collect()
    gc.freeze()


def announce_first_flush() -> None:
    """In a child: print "writing" once its first transaction is committed, so the test
    kills it while it writes, not while it starts."""
    original = LedgerWriter.flush

    def flush(self: LedgerWriter) -> None:
        original(self)
        if self.flushes == 1:
            print("writing", flush=True)

    LedgerWriter.flush = flush  # type: ignore[method-assign]


def tagged(url: str) -> str:
    """`url` with the children's application_name (PostgreSQL only)."""
    if not url.startswith("postgresql"):
        return url
    return make_url(url).update_query_dict({"application_name": APP_NAME}) \
        .render_as_string(hide_password=False)


def main(url: str) -> int:
    url = tagged(url)
    result = workload()
    warm_up(result, url)
    print("ready", len(result.trace), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] != "run":
            print("error unknown command", flush=True)
            continue
        flush_s = float(cmd[1])
        pid = os.fork()
        if pid == 0:  # the writer child
            code = 0
            try:
                announce_first_flush()
                write_sim_ledger(result, url, flush_every_s=flush_s)
            except BaseException:
                traceback.print_exc()
                code = 3
            os._exit(code)
        print("pid", pid, flush=True)
        _, status = os.waitpid(pid, 0)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        print("done", sig, code, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
