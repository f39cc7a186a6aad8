"""`hearth doctor` against the emulated site: all well, then a silent meter is named."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import simkit
import tomli_w

from hil.site import EmulatedSite


def _doctor(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", "doctor", "--config",
                           str(cfg)], capture_output=True, text=True, cwd=simkit.ROOT,
                          timeout=60, check=False)


@pytest.mark.slow
async def test_doctor_reports_each_dependency_in_words(tmp_path: Path) -> None:
    site_file = tmp_path / "house.toml"
    site_file.write_bytes(tomli_w.dumps(simkit.site_dict()).encode())
    site = EmulatedSite(site_file, simkit.trace(np.full(100, 3000.0), 300.0, step_s=60.0))
    await site.start()
    try:
        cfg = tmp_path / "site.toml"
        cfg.write_bytes(tomli_w.dumps(site.controller_site(tmp_path)).encode())
        ok = await asyncio.to_thread(_doctor, cfg)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "ok    device gx (victron-gx at 127.0.0.1:" in ok.stdout
        assert "ok    miner s9 (braiins-os): paused, 0 W" in ok.stdout
        assert "ok    ledger database" in ok.stdout
        assert "5 of 5 checks passed" in ok.stdout
        site.modbus.device(100).faults.no_answer = True
        bad = await asyncio.to_thread(_doctor, cfg)
        assert bad.returncode == 1
        assert "FAIL  device gx" in bad.stdout and "unit id (100)" in bad.stdout
        assert "fix the FAIL lines above" in bad.stdout
    finally:
        await site.stop()
