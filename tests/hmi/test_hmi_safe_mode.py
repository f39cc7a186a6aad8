"""Item 1 of issue 17, through the HMI alone: a site file with no [mqtt] that does not
validate brings the real `hearth run` up in safe mode with its HMI (the only way in), the
installer logs in with the setup code from the log, reads the file, saves a fixed one,
and the service exits 75 for systemd to start it on the new file. Before: exit 2."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from controller.bridge import tomldoc
from controller.config import load_site
from hil.rig.broker import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HOUSE = ROOT / "hil" / "sites" / "house-10kwp.toml"


def _setup_code(log_path: Path, deadline: float) -> str:
    while True:
        m = re.search(r"setup code: (\S+)", log_path.read_text(errors="replace"))
        if m:
            return m[1]
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.2)


def test_an_invalid_site_without_mqtt_is_repaired_through_the_hmi(tmp_path: Path) -> None:
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    doc.pop("mqtt", None)
    doc.pop("devices", None)
    port = free_port()
    doc["hmi"] = {"listen_host": "127.0.0.1", "listen_port": port}
    doc["service"] = {"data_dir": str(tmp_path / "data"), "start_delay_max_s": 0}
    doc["ledger"] = {"enabled": False}
    doc["control"] = {**doc.get("control", {}), "stale_timeout_s": 1e12}  # item 4's bound
    path = tmp_path / "site" / "site.toml"
    path.parent.mkdir()
    path.write_text("# kept by the repair\n" + tomldoc.dumps(doc))
    log_path = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run", "--config",
         str(path)], stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 90
        code = _setup_code(log_path, deadline)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as c:
            while True:
                try:
                    state = c.get("/api/state")
                    if state.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, \
                    log_path.read_text()[-3000:]
                time.sleep(0.2)
            alarms = " ".join(a["detail"] for a in state.json()["alarms"])
            assert "safe mode" in alarms and "control.stale_timeout_s" in alarms, alarms
            csrf = c.get("/api/auth/session").json()["csrf_token"]
            r = c.post("/api/auth/setup", json={"setup_code": code, "password": "pw-fix-it-1"},
                       headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            got = c.get("/api/config").json()["config"]
            assert got["control"]["stale_timeout_s"] == 1e12
            # still invalid: refused with the path, nothing written, still running
            r = c.put("/api/config", json={"config": got}, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 422, r.text
            assert "control.stale_timeout_s" in r.text and proc.poll() is None
            got["control"]["stale_timeout_s"] = 20
            r = c.put("/api/config", json={"config": got}, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200, r.text
        assert proc.wait(30) == 75, log_path.read_text()[-3000:]
        assert load_site(path).control.stale_timeout_s == 20
        assert path.read_text().startswith("# kept by the repair")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
