"""Storage: migrations, append-only rows, corrections, batching, resume after a stop or an
outage, two writers, settings that must not change, retention, payouts. Each test runs
on SQLite and, with HEARTH_TEST_PG_URL, on PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ledgerkit
import pytest
import simkit
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from ledgerkit import SITE, day_samples, economics, sample
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from controller.economics.payouts import Payout
from controller.errors import InputError
from controller.ledger.accumulate import LedgerEconomics, Sample
from controller.ledger.db import _alembic_config, head_revision, make_engine, migrate
from controller.ledger.query import Ledger
from controller.ledger.tables import INTERVAL_VALUE_COLUMNS
from controller.ledger.writer import LedgerConflict, LedgerWriter, SiteInfo, open_site_writer

T0 = datetime(2024, 5, 6, tzinfo=UTC).timestamp()


@pytest.fixture(params=ledgerkit.BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with ledgerkit.database(request.param, tmp_path) as u:
        yield u


def _values(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in INTERVAL_VALUE_COLUMNS) for r in rows]


def _write(url: str, samples: list[Any], finalize: bool = True, **kw: Any) -> LedgerWriter:
    kw.setdefault("flush_interval_s", 300)
    w = LedgerWriter.open(url, kw.pop("site", SITE), kw.pop("econ", economics()),
                          clock=lambda: 1e9, **kw)
    w.add_many(samples)
    w.close(finalize=finalize)
    return w


def _intervals(url: str, **kw: Any) -> list[dict[str, Any]]:
    led = Ledger.open(url)
    try:
        return led.intervals(**kw)
    finally:
        led.close()


# -- schema -----------------------------------------------------------------------------------


def test_migrations_build_exactly_the_models_schema(url: str) -> None:
    engine = make_engine(url, writer=True)
    try:
        assert migrate(engine) == head_revision() == migrate(engine)  # idempotent
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, _p: kind != "table"
                    or (name or "").startswith("ledger_")}),
                SQLModel.metadata)
        assert [d for d in diff if "ledger_" in repr(d)] == []
    finally:
        engine.dispose()


def test_upgrade_from_the_first_schema_keeps_history(url: str) -> None:
    engine = make_engine(url, writer=True)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    _write(url, day_samples(T0)[:240])  # the writer upgrades 0001 -> head on open ...
    # ... and once more from 0001, with data in place and the new tables not there yet:
    with engine.begin() as conn:
        before = conn.execute(text("SELECT count(*), sum(net) FROM ledger_interval")).one()
        conn.execute(text("DROP TABLE ledger_payout"))
        conn.execute(text("DROP TABLE ledger_telemetry"))
        conn.execute(text("ALTER TABLE ledger_interval DROP COLUMN dr_events"))  # 0003
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert migrate(engine) == head_revision()
    with engine.connect() as conn:
        after = conn.execute(text("SELECT count(*), sum(net) FROM ledger_interval")).one()
        assert conn.execute(text("SELECT count(*) FROM ledger_telemetry")).scalar() == 0
    engine.dispose()
    assert tuple(after) == tuple(before) and before[0] == 16


def test_a_newer_schema_is_refused(url: str) -> None:
    engine = make_engine(url, writer=True)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(InputError, match="written by a newer version"):
            migrate(engine)
    finally:
        engine.dispose()


def test_interval_rows_are_append_only_in_the_database(url: str) -> None:
    _write(url, day_samples(T0)[:60])
    engine = make_engine(url, writer=True)
    try:
        for stmt in ("UPDATE ledger_interval SET net = 0", "DELETE FROM ledger_interval"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(stmt))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ledger_interval")).scalar() == 4
    finally:
        engine.dispose()


def test_a_missing_sqlite_ledger_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ledger database"):
        Ledger.open(f"sqlite:///{tmp_path / 'nope.sqlite3'}")
    with pytest.raises(InputError, match="in-memory"):
        make_engine("sqlite://")


# -- corrections ------------------------------------------------------------------------------


def test_a_correction_is_a_new_row_referencing_the_old(url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    _write(url, day_samples(T0)[:30])
    led = Ledger.open(url, clock=lambda: 2e9)
    try:
        old = led.intervals()[1]
        new = led.correct(old["id"], {"heat_value": old["heat_value"] + Decimal("0.5"),
                                      "expected_msat": 1234}, "heat meter was offline")
        assert new["net"] == old["net"] + Decimal("0.5")
        assert (new["rev"], new["supersedes_id"], new["source"]) == (1, old["id"], "correction")
        cur = led.intervals()
        assert len(cur) == 2 and cur[1]["id"] == new["id"] and cur[1]["expected_msat"] == 1234
        hist = led.intervals(history=True)
        assert [r["id"] for r in hist if r["start_s"] == old["start_s"]] == [old["id"], new["id"]]
        assert led.totals()["net"] == sum((r["net"] for r in cur), Decimal(0))
        with pytest.raises(InputError, match="already corrected"):
            led.correct(old["id"], {"net": Decimal(1)}, "x")
        with caplog.at_level(logging.WARNING), pytest.raises(InputError) as err:
            led.correct(new["id"], {"nett": Decimal(1), "btc_value": 0.5}, " ")  # type: ignore[dict-item]
        text_ = str(err.value)
        assert "nett: cannot be corrected" in text_ and "reason: a correction needs" in text_
        assert "btc_value: must be a Decimal" in text_
        assert "refused ledger correction" in caplog.text
        assert led.day_report(date(2024, 5, 6)).corrected == 1
    finally:
        led.close()


# -- writer -----------------------------------------------------------------------------------


def test_writes_are_batched(url: str) -> None:
    """A day of 60-s samples, flushed every 5 min: 288 transactions (+1 closing the day)
    for 96 intervals and 1440 telemetry rows, instead of one per sample."""
    w = LedgerWriter.open(url, SITE, economics(), flush_interval_s=300, clock=lambda: 1e9)
    commits = []
    event.listen(w.engine, "commit", lambda conn: commits.append(1))
    w.add_many(day_samples(T0))
    w.close(finalize=True)
    assert w.flushes == 289 and len(commits) == 289
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_telemetry")).scalar() == 1440
        assert conn.execute(text("SELECT count(*) FROM ledger_interval")).scalar() == 96
    engine.dispose()


def test_results_do_not_depend_on_batching_or_stops(url: str, tmp_path: Path) -> None:
    """Stopping mid-interval (a live controller's shutdown) and restarting with some
    samples replayed gives exactly the intervals of one uninterrupted run."""
    samples = day_samples(T0)
    ref = f"sqlite:///{tmp_path / 'ref.sqlite3'}"
    _write(ref, samples, flush_interval_s=86_400)
    w1 = _write(url, samples[:437], finalize=False, flush_interval_s=60)  # stops at 07:17
    assert w1.resume_after_s == samples[436].end_s
    w2 = LedgerWriter.open(url, SITE, economics(), flush_interval_s=900, clock=lambda: 1e9)
    assert w2.resume_after_s == samples[436].end_s and w2.acc is not None
    w2.add_many(samples[400:])  # 37 samples replayed: skipped
    w2.close(finalize=True)
    assert w2.skipped_samples == 37
    assert _values(_intervals(url)) == _values(_intervals(ref))


def test_an_outage_closes_the_open_interval_as_partial(url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    samples = day_samples(T0)
    _write(url, samples[:607], finalize=False)  # up to 10:07
    with caplog.at_level(logging.INFO):
        _write(url, samples[660:720])  # back at 11:00
    rows = _intervals(url)
    by_time = {datetime.fromtimestamp(r["start_s"], UTC).strftime("%H:%M"): r for r in rows}
    part = by_time["10:00"]
    assert part["covered_s"] == 420 and part["reason"] == "partial: 420 s of 900 s covered"
    assert "10:15" not in by_time and by_time["11:00"]["covered_s"] == 900
    assert len(rows) == 40 + 1 + 4
    assert "resumes after" in caplog.text


def test_a_second_writer_for_the_same_site_is_stopped(url: str) -> None:
    samples = day_samples(T0)
    a = LedgerWriter.open(url, SITE, economics(), flush_interval_s=300, clock=lambda: 1e9)
    b = LedgerWriter.open(url, SITE, economics(), flush_interval_s=300, clock=lambda: 1e9)
    a.add_many(samples[:4])  # neither has flushed yet (every 5 min of samples)
    b.add_many(samples[:3])
    b.flush()
    with pytest.raises(LedgerConflict):
        a.flush()  # b's checkpoint is there: a must not overwrite it
    with pytest.raises(LedgerConflict):
        a.add(samples[4])
    a.engine.dispose()
    b.add_many(samples[3:20])  # b goes on; a later third writer would stop at b's flush
    c = LedgerWriter.open(url, SITE, economics(), flush_interval_s=300, clock=lambda: 1e9)
    b.flush()
    with pytest.raises(LedgerConflict, match="advanced by another writer"):
        c.add_many(samples[20:30])  # c's first flush finds b's newer checkpoint
        c.flush()
    c.engine.dispose()
    b.close()


def test_stored_settings_must_match(url: str, caplog: pytest.LogCaptureFixture) -> None:
    _write(url, day_samples(T0)[:20])
    other = SiteInfo("test-site", "CHF", "Europe/Zurich", 1800, 60)
    with caplog.at_level(logging.WARNING), pytest.raises(InputError) as err:
        LedgerWriter.open(url, other, LedgerEconomics("CHF", Decimal(1), economics().heat))
    msg = str(err.value)
    assert "site.currency" in msg and "site.timezone" in msg and "ledger.interval_min" in msg
    assert "refused ledger settings change" in caplog.text


def test_bad_samples_are_refused_and_logged(url: str, caplog: pytest.LogCaptureFixture) -> None:
    w = LedgerWriter.open(url, SITE, economics(), clock=lambda: 1e9)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="pv_w"):
            w.add(sample(T0, pv=float("nan")))
        with pytest.raises(ValueError, match="duration_s"):
            w.add(sample(T0, d=0.0))
        with pytest.raises(ValueError, match="dr_request"):
            w.add(sample(T0, dr="maybe"))  # type: ignore[arg-type]
        assert caplog.text.count("refused ledger sample") == 3
        w.add(sample(T0 + 3600))
        w.add(sample(T0))  # earlier than what was taken: a replay, skipped
        assert w.skipped_samples == 1
    finally:
        w.close(finalize=True)  # a simulation's end: its last interval is closed ...
    w = LedgerWriter.open(url, SITE, economics(), clock=lambda: 1e9)
    try:
        with pytest.raises(ValueError, match="already closed"):
            w.add(sample(T0 + 3660))  # ... and cannot be extended afterwards
    finally:
        w.close()


def test_telemetry_is_pruned_after_its_retention(url: str) -> None:
    samples = day_samples(T0, step=900) + day_samples(T0 + 86_400, step=900) + \
        day_samples(T0 + 2 * 86_400, step=900)
    SITE15 = SiteInfo("test-site", "EUR", "UTC", 900, 900)
    _write(url, samples, site=SITE15, retention_days=1)
    engine = make_engine(url)
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(start_s) FROM ledger_telemetry")).scalar()
        n_iv = conn.execute(text("SELECT count(*) FROM ledger_interval")).scalar()
    engine.dispose()
    assert first is not None and first >= T0 + 86_400  # day 1 telemetry is gone ...
    assert n_iv == 3 * 96  # ... intervals are kept


def test_sql_totals_equal_the_sum_of_rows_and_sites_are_separate(url: str) -> None:
    _write(url, day_samples(T0))
    _write(url, day_samples(T0)[:30], site=SiteInfo("other", "EUR", "UTC", 900, 60))
    with pytest.raises(InputError, match="holds 2 sites"):
        Ledger.open(url)
    with pytest.raises(InputError, match="no ledger for site 'ghost'"):
        Ledger.open(url, "ghost")
    led = Ledger.open(url, "test-site")
    try:
        rows = led.intervals()
        tot = led.totals()
        assert tot.intervals == len(rows) == 96
        for k in ("net", "btc_value", "miner_kwh", "import_cost", "expected_msat"):
            assert tot[k] == sum(r[k] for r in rows), k
        rep = led.day_report(date(2024, 5, 6))
        assert rep.total.sums == tot.sums
        month = led.month_report(2024, 5)  # summed by the database, grouped by local day
        assert [r.label for r in month.rows] == ["2024-05-06"]
        assert month.rows[0].totals.sums == month.total.sums == tot.sums
        assert month.expected_intervals == 31 * 96
        js = rep.as_json()
        assert js["total"]["net"] == str(tot["net"]) and len(js["rows"]) == 96
    finally:
        led.close()


def test_pool_payouts_are_imported_once_and_compared(url: str) -> None:
    _write(url, day_samples(T0))
    day2 = int(T0) + 86_400
    pays = [Payout(day2 + 7200, 100, "p1", int(T0), day2),
            Payout(day2 + 9000, 27, "p2", int(T0), day2)]
    led = Ledger.open(url, clock=lambda: 3e9)
    try:
        assert led.import_payouts(pays) == 2
        assert led.import_payouts(pays) == 0  # same references: nothing new
        cmp_ = led.day_report(date(2024, 5, 6)).payouts
        assert (cmp_.payouts, cmp_.actual_sats) == (2, 127)
        assert cmp_.expected_msat == led.totals()["expected_msat"]
        assert cmp_.ratio == (Decimal(127_000) / Decimal(cmp_.expected_msat)).quantize(
            Decimal("0.0001"))
        assert led.day_report(date(2024, 5, 7)).payouts.payouts == 0
    finally:
        led.close()


def test_live_path_from_meter_readings(url: str) -> None:
    """What the runtime will do: a writer from the site file, 1-s samples built from meter
    readings, then the HMI's snapshot and telemetry history."""
    cfg = simkit.site(ledger={"database_url": url, "flush_interval_s": 120,
                              "telemetry_step_s": 60})
    w = open_site_writer(cfg, clock=lambda: 1e9)
    t0 = T0 + 10 * 3600
    for k in range(1200):  # 20 min: PV 3 kW, house 500 W, miner 1 kW (12 TH/s), battery +1 kW
        w.add(Sample.from_meters(t0 + k, 1.0, pv_w=3000.0, grid_w=-500.0, battery_w=1000.0,
                                 miner_w=1000.0, hashrate_ths=12.0, import_price=Decimal("0.3"),
                                 export_price=Decimal("0.05"), btc=ledgerkit.TERMS,
                                 heat_to_tank_w=950.0, heat_from_tank_w=400.0, soc_pct=55.0))
    w.close()  # a live shutdown: the 10:15 interval stays open in the checkpoint
    led = Ledger.open(url, cfg.site.id)
    try:
        rows = led.intervals()
        assert len(rows) == 1 and rows[0]["covered_s"] == 900
        r = rows[0]
        assert r["load_kwh"] == Decimal("0.125")  # 3000 - 500 - 1000 - 1000 = 500 W
        assert r["miner_from_pv_kwh"] == Decimal("0.25") and r["export_kwh"] == Decimal("0.125")
        assert r["terahashes"] == Decimal(12 * 900)
        tel = led.telemetry(int(t0), int(t0) + 3600)
        assert len(tel) == 19 and tel[0]["soc_pct"] == 55.0 and tel[0]["miner_w"] == 1000.0
        snap = led.snapshot(t0 + 1200)
        assert snap["today"]["intervals"] == 1 and snap["today"] == snap["month"]
        assert snap["latest_interval"]["start"] == "2024-05-06T10:00:00Z"
        assert Decimal(snap["latest_interval"]["net"]) == r["net"]
    finally:
        led.close()


def test_pool_reconciliation_per_month_expected_fee_paid_luck(url: str) -> None:
    """Two local months with mining, payouts for each (one paid in June for May's period),
    an empty month left out; gross and fee from the terms' pool fee, exact to the sat."""
    from controller.economics.hashprice import NetworkTerms

    terms = NetworkTerms(Decimal("1.1e14"), 315_000_000, Decimal(60000), Decimal(2))
    may = datetime(2024, 5, 6, tzinfo=UTC).timestamp()
    june = datetime(2024, 6, 3, tzinfo=UTC).timestamp()
    samples = [sample(t, 60, pv=3000, miner=1200, btc=terms)
               for start in (may, june) for t in (start + 60 * i for i in range(180))]
    _write(url, samples)
    led = Ledger.open(url, clock=lambda: 3e9)
    try:
        tz = led.tz
        exp_may = led.totals(int(datetime(2024, 5, 1, tzinfo=tz).timestamp()),
                             int(datetime(2024, 6, 1, tzinfo=tz).timestamp()))["expected_msat"]
        exp_june = led.totals(int(datetime(2024, 6, 1, tzinfo=tz).timestamp()),
                              int(datetime(2024, 7, 1, tzinfo=tz).timestamp()))["expected_msat"]
        assert exp_may > 0 and exp_june > 0
        led.import_payouts([
            Payout(int(june) + 3600, 400, "may-1", int(may), int(may) + 86_400),  # for May
            Payout(int(june) + 7200, 50, "june-1"),  # no period: counts when paid
            Payout(int(june) + 8000, 25, "june-2"),
        ])
        months = led.reconciliation(2024, 6, months=3)
        assert [m.label for m in months] == ["2024-05", "2024-06"]  # April: nothing, left out
        m5, m6 = months
        assert (m5.expected_msat, m5.paid_sats, m5.payouts) == (exp_may, 400, 1)
        assert (m6.expected_msat, m6.paid_sats, m6.payouts) == (exp_june, 75, 2)
        assert m5.gross_msat == int(Decimal(exp_may) / Decimal("0.98"))  # 2 % pool fee
        assert m5.fee_sats == m5.gross_msat // 1000 - exp_may // 1000
        assert m5.difference_sats == 400 - exp_may // 1000
        assert m5.ratio == (Decimal(400_000) / Decimal(exp_may)).quantize(Decimal("0.0001"))
        rep = led.month_report(2024, 6)
        assert [r["month"] for r in rep.as_json()["pool_reconciliation"]] == ["2024-05",
                                                                              "2024-06"]
        from controller.ledger.query import render_report

        text = render_report(rep)
        assert "pool reconciliation" in text
        line = next(x for x in text.splitlines() if x.startswith("2024-05 "))
        assert f"{exp_may // 1000:>10}" in line and "       400" in line
    finally:
        led.close()
