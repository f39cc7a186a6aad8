"""Schemathesis against the running service: the real `hearth run` process with its HMI
on a free port, driven through the app's own OpenAPI document over a real socket.
Generated requests (valid and invalid) to every operation, anonymous and logged in as the
installer (the session the setup code from the service's log opened), in the examples,
fuzzing and stateful phases — the stateful phase chains operations through the links it
infers (GET/POST /api/tokens -> DELETE /api/tokens/{token_id}, the installer's device and
miner lists -> their test buttons) and the test checks that it covered some. No request
may get a 5xx nor an answer outside its documented schema or content type (issue 17).

Left out: the live feed (/api/events, an endless stream; tested in test_hmi_api.py), and
for the logged-in run the two operations that end the very session it runs with
(/api/auth/logout, /api/auth/panel), which the anonymous run still covers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from controller.bridge import tomldoc
from hil.rig.broker import free_port

pytestmark = pytest.mark.slow

ST = Path(sys.executable).parent / "st"
ROOT = Path(__file__).resolve().parents[2]
HOUSE = ROOT / "hil" / "sites" / "house-10kwp.toml"
PASSWORD = "fuzz-installer-pw-1"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _schemathesis(url: str, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(ST), "run", f"{url}/api/openapi.json", "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--max-examples", "15", "--seed", "8", "--no-shrink", "--generation-database", "none",
        "--workers", "1", "--phases", "examples,fuzzing,stateful",
        "--generation-with-security-parameters", "false", "--exclude-path", "/api/events",
        "--request-timeout", "10", "--no-color", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 600)  # a loaded 2-core CI box
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def _site(tmp_path: Path, hmi_port: int) -> Path:
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    for m in doc["miners"]:  # the fuzzer finds the miners' test buttons: answer fast
        m["driver"] = {**m["driver"], "host": "127.0.0.1", "port": _dead_port(),
                       "timeout_s": 0.5}
    for d in doc.get("devices", []):  # and the devices' read buttons
        if d.get("transport", "tcp") == "tcp":
            d["host"], d["port"] = "127.0.0.1", _dead_port()
    doc["hmi"] = {"listen_host": "127.0.0.1", "listen_port": hmi_port}
    data = tmp_path / "data"
    doc["service"] = {"data_dir": str(data), "start_delay_max_s": 0}
    doc["ledger"] = {"data_dir": str(data)}
    path = tmp_path / "site" / "site.toml"
    path.parent.mkdir()
    path.write_text(tomldoc.dumps(doc))
    return path


def _installer_session(url: str, log_path: Path) -> tuple[str, str]:
    """Log in as the installer the way one does on a new Pi: the setup code from the log.
    Returns the Cookie header and the CSRF token."""
    deadline = time.monotonic() + 90
    code = None
    while code is None:
        m = re.search(r"setup code: (\S+)", log_path.read_text(errors="replace"))
        code = m[1] if m else None
        assert code is not None or time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.2)
    with httpx.Client(base_url=url, timeout=10) as c:
        while True:
            try:
                csrf = c.get("/api/auth/session").json()["csrf_token"]
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the HMI did not answer"
                time.sleep(0.2)
        r = c.post("/api/auth/setup", json={"setup_code": code, "password": PASSWORD},
                   headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["role"] == "installer", r.text
        cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
        return cookie, r.json()["csrf_token"]


def _passed(out: str) -> None:
    done = re.search(r"(\d+) generated, (\d+) passed", out)
    assert done is not None and done[1] == done[2] and int(done[1]) > 300, out[-4000:]
    assert re.search(r"Stateful \(in", out) and re.search(r"Scenarios:\s+[1-9]", out), \
        out[-4000:]


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed in this venv")
async def test_no_request_to_the_running_service_gets_a_server_error(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    site = _site(tmp_path, port)
    log_path = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run", "--config",
         str(site)], stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        cookie, csrf = await asyncio.to_thread(_installer_session, url, log_path)
        # anonymous and as the installer, side by side
        anonymous, installer = await asyncio.gather(
            _schemathesis(url),
            _schemathesis(url, "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {csrf}",
                          "--exclude-path", "/api/auth/logout",
                          "--exclude-path", "/api/auth/panel"))
        assert anonymous[0] == 0, anonymous[1][-4000:]
        assert installer[0] == 0, installer[1][-4000:]
        _passed(anonymous[1])
        _passed(installer[1])
        # The stateful phase really chained operations as the installer: tokens it created
        # were revoked by their id (8 random hex digits: only a link from the creating
        # answer can name one).
        log = log_path.read_text(errors="replace")
        created = set(re.findall(r"HMI API token ([0-9a-f]{8}) .* created", log))
        revoked = set(re.findall(r"HMI API token ([0-9a-f]{8}) .* revoked", log))
        assert revoked and revoked <= created, (created, revoked)
        # the session held to the end (the run was logged in throughout), and the service
        # still works afterwards
        async with httpx.AsyncClient(base_url=url, timeout=10,
                                     headers={"Cookie": cookie}) as c:
            assert (await c.get("/api/auth/session")).json()["role"] == "installer"
            assert (await c.get("/api/state")).status_code == 200
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert "Traceback" not in log_path.read_text(), log_path.read_text()[-6000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
