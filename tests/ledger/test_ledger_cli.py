"""`hearth ledger report / export / payouts import` end to end, through `register()` on a
parser built like controller/cli.py builds its own (exit 2 on InputError)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from pathlib import Path

import ledgerkit
import pytest
import simkit

from controller.config import load_site
from controller.errors import InputError
from controller.ledger.cli import register
from controller.ledger.query import EXPORT_COLUMNS, Ledger
from controller.ledger.sim import write_sim_ledger
from controller.sim.runner import simulate
from controller.trace.reader import read_trace

DAY = simkit.ROOT / "hil" / "traces" / "house-spring-day.csv"


def run(argv: Sequence[str]) -> tuple[int, str, str]:
    """Like controller.cli.main: parse, call func, InputError -> 2 (stderr)."""
    p = argparse.ArgumentParser(prog="hearth")
    register(p.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            args = p.parse_args(argv)
            rc = args.func(args)
        except InputError as e:
            print(e.render(), file=sys.stderr)
            rc = 2
        except SystemExit as e:  # argparse
            rc = int(e.code or 0)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(params=ledgerkit.BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with ledgerkit.database(request.param, tmp_path) as u:
        cfg = load_site(simkit.HOUSE)
        write_sim_ledger(simulate(cfg, read_trace(DAY, cfg), progress=False), u)
        yield u


def test_day_and_month_reports(url: str) -> None:
    rc, out, _ = run(["ledger", "report", "--db", url, "--day", "2015-04-21"])
    assert rc == 0
    lines = out.splitlines()
    assert "site demo-house, day 2015-04-21 (Europe/Brussels)" in lines[0]
    # a UTC-day simulation covers 88 of the 96 Brussels quarter hours of that day
    assert lines[1].startswith("88 of 96 15-min intervals")
    rows = [ln for ln in lines if ln[:2].isdigit() and ln[2] == ":"]
    assert len(rows) == 88 and rows[0].startswith("02:00")
    total = next(ln for ln in lines if ln.startswith("total")).split()
    led = Ledger.open(url)
    try:
        day = led.day_report(__import__("datetime").date(2015, 4, 21)).total
    finally:
        led.close()
    assert total[5] == str(day.sats) and Decimal(total[-1]) == day["net"].quantize(
        Decimal("0.0001"))

    rc, out, _ = run(["ledger", "report", "--db", url, "--month", "2015-04", "--json"])
    assert rc == 0
    js = json.loads(out)
    assert js["kind"] == "month" and js["expected_intervals"] == 30 * 96
    assert [r["label"] for r in js["rows"]] == ["2015-04-21", "2015-04-22"]
    assert js["total"]["intervals"] == 96
    assert Decimal(js["total"]["net"]) == sum(Decimal(r["net"]) for r in js["rows"])


def test_export_csv_file_stdout_and_history(url: str, tmp_path: Path) -> None:
    out_file = tmp_path / "ledger.csv"
    rc, _, err = run(["ledger", "export", "--db", url, "--csv", str(out_file)])
    assert rc == 0 and "96 interval rows" in err
    with out_file.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == EXPORT_COLUMNS and len(rows) == 96
    assert rows[0]["interval_start"] == "2015-04-21T00:00:00Z" and rows[0]["currency"] == "EUR"
    assert sum(int(r["expected_msat"]) for r in rows) > 300_000
    led = Ledger.open(url)
    try:
        first = led.intervals()[40]
        led.correct(first["id"], {"btc_value": Decimal("1.5")}, "pool credit")
    finally:
        led.close()
    rc, out, _ = run(["ledger", "export", "--db", url, "--csv", "-", "--from", "2015-04-21",
                      "--to", "2015-04-21"])
    assert rc == 0 and len(out.splitlines()) == 1 + 88  # local day: 88 of them
    rc, out, _ = run(["ledger", "export", "--db", url, "--csv", "-", "--history"])
    hist = list(csv.DictReader(io.StringIO(out)))
    assert len(hist) == 97
    corr = [r for r in hist if r["source"] == "correction"]
    assert len(corr) == 1 and corr[0]["supersedes_id"] == str(first["id"])
    assert corr[0]["reason"] == "pool credit" and corr[0]["btc_value"] == "1.500000"


def test_payouts_import(url: str, tmp_path: Path) -> None:
    f = tmp_path / "payouts.csv"
    f.write_text("time,amount_btc,reference,period_start,period_end\n"
                 "2015-04-22T02:00:00Z,0.00000300,fpps-0421,2015-04-21T00:00:00Z,"
                 "2015-04-22T00:00:00Z\n")
    rc, out, _ = run(["ledger", "payouts", "import", "--db", url, "--csv", str(f)])
    assert rc == 0 and "1 payouts read, 1 new" in out
    rc, out, _ = run(["ledger", "payouts", "import", "--db", url, "--csv", str(f)])
    assert "0 new, 1 already in the ledger" in out
    rc, out, _ = run(["ledger", "report", "--db", url, "--day", "2015-04-21"])
    assert "pool payouts: 1, 300 sats paid against" in out
    # The month report ends with the reconciliation: April's expected vs the 300 paid.
    rc, out, _ = run(["ledger", "report", "--db", url, "--month", "2015-04"])
    assert rc == 0 and "pool reconciliation" in out
    april = next(x for x in out.splitlines() if x.startswith("2015-04 "))
    assert april.split()[4] == "300" and april.split()[-1] == "1"  # paid, payouts
    rc, out, _ = run(["ledger", "report", "--db", url, "--month", "2015-04", "--json"])
    rec = json.loads(out)["pool_reconciliation"]
    assert [(m["month"], m["paid_sats"], m["payouts"]) for m in rec] == [("2015-04", 300, 1)]
    assert rec[0]["difference_sats"] == 300 - rec[0]["expected_sats"]


def test_bad_arguments_and_inputs(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    rc, _, err = run(["ledger", "report", "--db", missing, "--day", "2015-04-21"])
    assert rc == 2 and "no ledger database" in err
    rc, _, err = run(["ledger", "report", "--day", "2015-04-21"])
    assert rc == 2 and "give exactly one of --db URL and --config" in err
    rc, _, err = run(["ledger", "report", "--db", missing, "--day", "21.4.2015"])
    assert rc == 2 and "not a date" in err
    rc, _, err = run(["ledger", "report", "--db", missing, "--day", "2015-04-21",
                      "--month", "2015-04"])
    assert rc == 2 and "not allowed with" in err
    rc, _, err = run(["ledger", "report", "--db", "mysql://x/y", "--month", "2015-13"])
    assert rc == 2 and "not a month" in err
    rc, _, err = run(["ledger", "report", "--db", "mysql://x/y", "--month", "2015-04"])
    assert rc == 2 and "mysql://x/y: not a ledger database URL" in err
    bad = tmp_path / "p.csv"
    bad.write_text("time,amount_sats\n2015-04-22T02:00:00,12.5\n")
    rc, _, err = run(["ledger", "payouts", "import", "--db", missing, "--csv", str(bad)])
    assert rc == 2
    assert "row 2, column time: time '2015-04-22T02:00:00' has no UTC offset" in err
    assert "row 2, column amount_sats: 12.5 is not a whole number of sats" in err


def test_config_names_the_database(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    text = simkit.HOUSE.read_text() + (
        f'\n[ledger]\ndata_dir = "{tmp_path}"\ninterval_min = 15\n')
    site.write_text(text)
    cfg = load_site(site)
    assert cfg.ledger.url == f"sqlite:///{tmp_path}/ledger.sqlite3"
    write_sim_ledger(simulate(cfg, read_trace(DAY, cfg), progress=False), cfg.ledger.url)
    rc, out, _ = run(["ledger", "report", "--config", str(site), "--month", "2015-04"])
    assert rc == 0 and "site demo-house, month 2015-04" in out
