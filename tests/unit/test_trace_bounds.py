"""Item 11 of issue 17: trace values beyond a physical bound of the site are refused, with
the row and the reason (`hearth trace check`, `hearth sim`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import simkit

from controller.cli import main
from controller.errors import InputError
from controller.trace.reader import parse_trace

HEADER = "time,pv_w,load_w\n"


def _csv(rows: list[tuple[float, float]]) -> str:
    return HEADER + "".join(f"2025-04-21T00:{i:02d}:00Z,{pv},{load}\n"
                            for i, (pv, load) in enumerate(rows))


def test_pv_beyond_the_array_is_refused_with_row_and_reason() -> None:
    cfg = simkit.site()  # 10 kWp
    with pytest.raises(InputError) as ei:
        parse_trace(_csv([(1000, 500), (1e12, 500), (2000, 500)]), cfg, "t.csv")
    (p,) = ei.value.problems
    assert p.where == "row 3, column pv_w"
    assert "10000" in p.reason and "peak" in p.reason


def test_load_beyond_what_the_site_can_supply_is_refused() -> None:
    cfg = simkit.site()
    with pytest.raises(InputError) as ei:
        parse_trace(_csv([(0, 500), (0, 5e6)]), cfg, "t.csv")
    assert ei.value.problems[0].where == "row 3, column load_w"


def test_plausible_values_pass_and_trace_check_refuses_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = simkit.site()
    tr = parse_trace(_csv([(12_000, 500), (0, 25_000)]), cfg, "t.csv")  # edge-of-cloud
    assert tr.pv_w[0] == 12_000
    bad = tmp_path / "bad.csv"
    bad.write_text(_csv([(1000, 500), (1e12, 500)]))
    assert main(["trace", "check", str(bad), "--config", str(simkit.HOUSE)]) == 2
    assert "row 3, column pv_w" in capsys.readouterr().err
