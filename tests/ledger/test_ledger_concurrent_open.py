"""Two openers of a new SQLite ledger at once (hearth run's writer and its MQTT "today"
reader) must both succeed: the migration takes the write lock before it reads the
schema. Found by the HIL rig, where the writer sometimes lost a whole run's revenue."""

from __future__ import annotations

import threading
from pathlib import Path

import ledgerkit

from controller.ledger.db import head_revision, make_engine, migrate
from controller.ledger.writer import LedgerWriter


def _race(url: str) -> list[BaseException]:
    errors: list[BaseException] = []
    go = threading.Barrier(3)

    def writer() -> None:
        go.wait()
        try:
            LedgerWriter.open(url, ledgerkit.SITE, ledgerkit.economics(),
                              clock=lambda: 1e9).close(finalize=False)
        except BaseException as err:
            errors.append(err)

    def reader() -> None:
        go.wait()
        try:  # what Ledger.open does before it looks for the site
            eng = make_engine(url, create=False)
            try:
                migrate(eng)
            finally:
                eng.dispose()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=f) for f in (writer, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_writer_and_readers_opening_a_new_ledger_together_all_succeed(tmp_path: Path) -> None:
    for i in range(12):
        url = f"sqlite:///{tmp_path / f'race{i}.sqlite3'}"
        eng = make_engine(url)
        eng.connect().close()  # the file exists (WAL), its schema does not
        eng.dispose()
        errors = _race(url)
        assert not errors, f"round {i}: {errors!r}"
        eng = make_engine(url, create=False)
        try:
            assert migrate(eng) == head_revision()
        finally:
            eng.dispose()
