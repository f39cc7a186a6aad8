"""The compiled control core (`controller/native.py`): used only while it matches the
sources, and then giving the very same results as the interpreted one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import simkit

from controller import native

DAY = simkit.ROOT / "hil" / "traces" / "house-spring-day.csv"


def _status(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "controller.native", "status"],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          cwd=simkit.ROOT, check=True)
    return proc.stdout.strip()


def test_a_build_for_other_sources_is_not_used(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV_DIR, str(tmp_path))
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    folder, why = native.state()
    assert folder is None and "no compiled build" in why
    (tmp_path / native.STAMP).write_text("0" * 64 + "\n", encoding="ascii")
    folder, why = native.state()
    assert folder is None and "stale" in why
    (tmp_path / native.STAMP).write_text(native.digest() + "\n", encoding="ascii")
    assert native.state()[0] == tmp_path
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    folder, why = native.state()
    assert folder is None and "HEARTH_NATIVE=0" in why


def test_the_digest_follows_every_source_and_dependency(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Any compiled module or a project module whose types are compiled in changes it."""
    fake = tmp_path / "controller"
    for p in native.sources():
        dest = fake / p.relative_to(native.PACKAGE_DIR)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(p.read_bytes())
    monkeypatch.setattr(native, "PACKAGE_DIR", fake)
    monkeypatch.setattr(native, "CONTROL_DIR", fake / "control")
    before = native.digest()
    assert before == native.digest()
    for p in native.sources():
        with p.open("a", encoding="utf-8") as f:
            f.write("\n# edited\n")
        after = native.digest()
        assert after != before, p
        before = after


@pytest.mark.slow(90)  # compiles the control core with mypyc (about a minute of CPU)
def test_compiled_core_gives_the_same_timeline_as_the_interpreted(tmp_path: Path) -> None:
    out = tmp_path / "native"
    subprocess.run([sys.executable, "-m", "controller.native", "build", "--out", str(out)],
                   cwd=simkit.ROOT, check=True, capture_output=True)
    compiled = {native.ENV_DIR: str(out), native.ENV_SWITCH: "1"}
    interpreted = {native.ENV_DIR: str(out), native.ENV_SWITCH: "0"}
    assert _status(compiled) == f"compiled ({out})"
    assert _status(interpreted).startswith("interpreted")
    timelines = {}
    for label, env in (("compiled", compiled), ("interpreted", interpreted)):
        tl = tmp_path / f"{label}.csv"
        for policy in ("hearth", "evcc", "threshold"):
            proc = subprocess.run(
                [sys.executable, "-m", "controller.cli", "sim", "--config", str(simkit.HOUSE),
                 "--trace", str(DAY), "--controller", policy, "--timeline", str(tl)],
                env={**os.environ, **env}, cwd=simkit.ROOT, capture_output=True, text=True,
                check=False)
            assert proc.returncode in (0, 1), proc.stderr[-2000:]
            timelines[label, policy] = tl.read_bytes()
    for policy in ("hearth", "evcc", "threshold"):
        assert timelines["compiled", policy] == timelines["interpreted", policy], policy
    # A source edited after the build: that build is no longer used.
    stamp = out / native.STAMP
    stamp.write_text("f" * 64 + "\n", encoding="ascii")
    assert "stale" in _status(compiled)
