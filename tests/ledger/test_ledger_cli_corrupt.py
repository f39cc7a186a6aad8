"""Item 8 of issue 17: `hearth ledger report/export` on a corrupt database exits 2 with a
message that names the database, as docs/ledger.md promises, not a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from controller.cli import main


def _garbage(tmp_path: Path) -> Path:
    p = tmp_path / "ledger.sqlite3"
    p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)  # a header, then noise
    return p


def _foreign(tmp_path: Path) -> Path:
    p = tmp_path / "other.sqlite3"
    with sqlite3.connect(p) as c:  # a valid SQLite file that is not a ledger
        c.execute("CREATE TABLE ledger_interval (x TEXT)")
        c.execute("CREATE TABLE alembic_version (version_num TEXT)")
        c.execute("INSERT INTO alembic_version VALUES ('no-such-revision')")
    return p


@pytest.mark.parametrize("make", [_garbage, _foreign])
@pytest.mark.parametrize("args", [["report", "--day", "2025-04-21"],
                                  ["export", "--csv", "-"]])
def test_a_corrupt_ledger_exits_2_with_a_message(tmp_path: Path, make: object,
                                                   args: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert callable(make)
    db = make(tmp_path)
    rc = main(["ledger", args[0], "--db", f"sqlite:///{db}", *args[1:]])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(db) in err and "Traceback" not in err
    assert "ledger" in err.lower()
