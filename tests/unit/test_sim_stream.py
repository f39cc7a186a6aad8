"""The streaming simulator: a trace read in chunks and simulated block by block gives the
same timeline and summary as the whole trace in memory, and its memory does not grow with
the trace's length."""

from __future__ import annotations

import gc
import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simkit

import controller.trace.reader as reader
from controller.cli import main
from controller.config.models import SiteConfig
from controller.errors import InputError
from controller.sim.report import (
    import_limit_violations,
    min_on_off_violations,
    summarize,
    timeline_text,
)
from controller.sim.runner import simulate
from controller.sim.stream import TIMELINE_HEADER, TimelineWriter
from controller.trace.cli import TraceStats, summarise
from controller.trace.reader import iter_trace, parse_trace, read_trace

DAY = simkit.SPRING_DAY
CLOUD = simkit.ROOT / "hil" / "traces" / "pv-cloud-10s.csv"


def _same_summary(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal to the rounding: sums over blocks may differ in the last bits."""
    assert a.keys() == b.keys()
    for k in a:
        if k == "wall_s":
            continue
        if isinstance(a[k], dict):
            _same_summary(a[k], b[k])
        elif isinstance(a[k], float):
            assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9), k
        else:
            assert a[k] == b[k], k


@pytest.mark.parametrize("policy", ["hearth", "threshold"])
def test_streamed_run_equals_the_whole_trace_run(tmp_path: Path, policy: str) -> None:
    cfg = simkit.site()
    path = simkit.spring_days(2, tmp_path / "two.csv")
    whole = simulate(cfg, read_trace(path, cfg), policy, progress=False)
    tl = tmp_path / "t.csv.gz"
    streamed = simulate(cfg, iter_trace(path, cfg, chunk_rows=1000), policy, progress=False,
                        consumers=[TimelineWriter(tl)], block_rows=333)
    assert streamed.trace is None and not streamed.columns  # nothing per row was kept
    assert streamed.steps == whole.steps == 2 * 1440
    _same_summary(summarize(whole), summarize(streamed))
    with gzip.open(tl, "rt") as f:
        assert f.read() == timeline_text(whole)
    assert streamed.trip_log == whole.trip_log and streamed.forced_off == whole.forced_off
    # the run-wide checks over blocks count what the whole-array checks find
    s = summarize(streamed)
    assert s["import_limit_violations"] == len(import_limit_violations(whole))
    assert s["min_on_off_violations"] == len(min_on_off_violations(whole))


def test_kept_columns_are_the_same_whatever_the_block_size() -> None:
    cfg = simkit.site(simkit.FARM)
    tr = read_trace(CLOUD, cfg)
    a = simulate(cfg, tr, progress=False)
    b = simulate(cfg, tr, progress=False, block_rows=7)
    assert a.columns.keys() == b.columns.keys()
    for k in a.columns:
        np.testing.assert_array_equal(a.columns[k], b.columns[k], err_msg=k)
    assert a.mode == b.mode and a.limiter == b.limiter and a.starts == b.starts
    for k in a.miner_run:
        np.testing.assert_array_equal(a.miner_run[k], b.miner_run[k])
    _same_summary(summarize(a), summarize(b))


def test_min_on_off_check_carries_state_across_blocks() -> None:
    """A violation whose switch pair straddles a block boundary is still found."""
    cfg = simkit.site()
    n = 600
    pv = np.where((np.arange(n) // 37) % 2 == 0, 9000.0, 0.0)  # surplus flips every 37 s
    tr = simkit.trace(pv, 300.0, step_s=1.0)
    whole = simulate(cfg, tr, "threshold", progress=False)
    for rows in (5, 36, 37, 64):
        r = simulate(cfg, tr, "threshold", progress=False, keep_columns=False, block_rows=rows)
        assert summarize(r)["min_on_off_violations"] == len(min_on_off_violations(whole))
        assert summarize(r)["import_limit_violations"] == len(import_limit_violations(whole))


def test_timeline_appears_only_when_the_run_ends(tmp_path: Path) -> None:
    cfg = simkit.site()
    bad = simkit.spring_days(2, tmp_path / "bad.csv")
    lines = bad.read_text().splitlines()
    lines[2000] = lines[2000].replace(",", ",x", 1)  # a bad number on line 2001
    bad.write_text("\n".join(lines) + "\n")
    tl = tmp_path / "t.csv"
    with pytest.raises(InputError) as err:
        simulate(cfg, iter_trace(bad, cfg, chunk_rows=500), consumers=[TimelineWriter(tl)],
                 progress=False)
    assert "row 2001" in str(err.value)
    assert not tl.exists() and list(tmp_path.iterdir()) == [bad]


def test_cli_sim_streams_and_its_outputs_match_the_in_memory_run(tmp_path: Path) -> None:
    cfg = simkit.site()
    tl, sm = tmp_path / "t.csv", tmp_path / "s.json"
    assert main(["sim", "--config", str(simkit.HOUSE), "--trace", str(DAY), "--timeline",
                 str(tl), "--summary", str(sm)]) == 0
    whole = simulate(cfg, read_trace(DAY, cfg), progress=False)
    assert tl.read_text() == timeline_text(whole)
    _same_summary(json.loads(sm.read_text()), json.loads(json.dumps(summarize(whole))))


# ------------------------------------------------------------------ memory


def _peak_bytes(cfg: SiteConfig, path: Path, tmp: Path) -> int:
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    r = simulate(cfg, iter_trace(path, cfg, chunk_rows=512), progress=False,
                 consumers=[TimelineWriter(tmp / "tl.csv")], block_rows=256)
    assert r.steps > 0
    return tracemalloc.get_traced_memory()[1] - base


@pytest.mark.slow  # tracemalloc makes every allocation slow
def test_memory_is_flat_in_the_trace_length(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A trace 4x longer must not raise the peak allocation by more than 10 %. Buffers are
    made small (a day is several read blocks, chunks and blocks) so that both runs are in
    the steady state the real sizes reach on long traces."""
    monkeypatch.setattr(reader, "_READ_BYTES", 16_384)
    cfg = simkit.site()
    short = simkit.spring_days(1, tmp_path / "short.csv")
    long = simkit.spring_days(4, tmp_path / "long.csv")
    simulate(cfg, iter_trace(short, cfg), progress=False)  # imports, caches
    tracemalloc.start()
    try:
        p_short = _peak_bytes(cfg, short, tmp_path)
        p_long = _peak_bytes(cfg, long, tmp_path)
    finally:
        tracemalloc.stop()
    assert p_long <= 1.10 * p_short, (p_short, p_long)


@pytest.mark.slow  # tracemalloc makes every allocation slow
def test_trace_check_memory_is_flat_in_the_trace_length(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hearth trace check` of a trace 4x longer peaks within 10 % of the shorter one's
    allocation (chunks made small, so that a day is already several of them)."""
    import controller.trace.cli as trace_cli

    monkeypatch.setattr(reader, "_READ_BYTES", 16_384)
    monkeypatch.setattr(trace_cli, "iter_trace",
                        lambda path, cfg: iter_trace(path, cfg, chunk_rows=512))
    short = simkit.spring_days(1, tmp_path / "short.csv")
    long = simkit.spring_days(4, tmp_path / "long.csv")
    args = ["trace", "check", "--config", str(simkit.HOUSE)]

    def peak(path: Path) -> int:
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert main([*args, str(path)]) == 0
        return tracemalloc.get_traced_memory()[1] - base

    assert main([*args, str(short)]) == 0  # imports, caches
    tracemalloc.start()
    try:
        p_short, p_long = peak(short), peak(long)
    finally:
        tracemalloc.stop()
    out = capsys.readouterr().out
    assert "1440 rows" in out and "5760 rows" in out  # both were read to the end
    assert p_long <= 1.10 * p_short, (p_short, p_long)


# ------------------------------------------------------------------ reader


def test_chunked_read_equals_the_whole_read(tmp_path: Path) -> None:
    cfg = simkit.site()
    whole = read_trace(DAY, cfg)
    chunks = list(iter_trace(DAY, cfg, chunk_rows=97))
    assert sum(len(c) for c in chunks) == len(whole) and len(chunks) == 15
    for name in ("time_s", *reader.NUMBER_COLUMNS):
        np.testing.assert_array_equal(np.concatenate([getattr(c, name) for c in chunks]),
                                      getattr(whole, name), err_msg=name)
    st = TraceStats()
    for c in chunks:
        st.add(c)
    assert summarise(st, "EUR") == summarise(whole, "EUR")


def test_problems_across_chunks_name_their_lines(tmp_path: Path) -> None:
    cfg = simkit.site()
    lines = DAY.read_text().splitlines()
    del lines[101]  # a missing minute right at a chunk boundary: line 102 now jumps 2 min
    lines[500] = lines[500].replace(",", ",-", 1)  # negative pv on line 501
    p = tmp_path / "gap.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        list(iter_trace(p, cfg, chunk_rows=100))
    found = [(x.where, x.reason) for x in err.value.problems]
    assert found[0][0] == "row 102, column time" and "1 step(s) missing" in found[0][1]
    assert found[1][0] == "row 501, column pv_w"
    with pytest.raises(InputError) as whole:
        read_trace(p, cfg)
    assert [(x.where, x.reason) for x in whole.value.problems] == found


def test_line_breaks_split_across_read_blocks(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """CRLF files, a BOM, blank lines and gzip, read in blocks of a few bytes."""
    cfg = simkit.site()
    text = DAY.read_text().splitlines()[:40]
    body = "\ufeff" + "\r\n".join(text[:10]) + "\r\n\r\n" + "\r\n".join(text[10:]) + "\r\n\n  \n"
    p = tmp_path / "crlf.csv.gz"
    p.write_bytes(gzip.compress(body.encode("utf-8")))
    expected = parse_trace(body, cfg)
    monkeypatch.setattr(reader, "_READ_BYTES", 7)
    got = read_trace(p, cfg)
    assert len(got) == len(expected) == 39
    np.testing.assert_array_equal(got.time_s, expected.time_s)
    np.testing.assert_array_equal(got.pv_w, expected.pv_w)


def test_bad_utf8_names_the_byte_in_any_block(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = simkit.site()
    raw = DAY.read_bytes()[:3000]
    p = tmp_path / "bad.csv"
    p.write_bytes(raw[:2500] + b"\xff" + raw[2500:])
    monkeypatch.setattr(reader, "_READ_BYTES", 64)
    with pytest.raises(InputError, match="byte 2500"):
        read_trace(p, cfg)


def test_timeline_header_is_the_contract() -> None:
    assert TIMELINE_HEADER.startswith("time,pv_w,load_w,") and TIMELINE_HEADER.endswith("mode\n")
