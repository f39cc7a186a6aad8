"""The simulator's progress bar: on stderr when asked (default: only on a terminal)."""

from __future__ import annotations

import numpy as np
import pytest
import simkit

from controller.sim.runner import simulate


def test_progress_bar_draws_on_stderr_when_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    tr = simkit.trace(np.full(500, 2000.0), 300.0, step_s=60.0)
    simulate(simkit.site(), tr, "hearth", progress=True)
    err = capsys.readouterr().err
    assert "sim [" in err and "%" in err


def test_no_progress_bar_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    tr = simkit.trace(np.full(500, 2000.0), 300.0, step_s=60.0)
    simulate(simkit.site(), tr, "hearth", progress=None)  # pytest's stderr is not a TTY
    assert capsys.readouterr().err == ""
