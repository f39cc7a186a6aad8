"""Item 1 of issue 17: `hearth run` with a config it cannot start the miners with comes up
in safe mode (miners held off, MQTT bridge and HMI up, the reason shown) instead of
exiting, so the site can be repaired remotely. A real process, a real Mosquitto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import brokerkit
import httpx
from mqtt_testkit import ACL_TEXT, SITE, TIMEOUT_S, USERS, client, site_doc, write_site

from hil.rig.broker import free_port

BASE = f"hearth/{SITE}"
ROOT = Path(__file__).resolve().parents[2]


def test_a_site_whose_miners_cannot_be_built_runs_in_safe_mode(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as broker:
        doc = site_doc(broker)
        # Valid as a document, but this process has no such variable: the S9's driver
        # cannot be built. Before the fix `hearth run` exited 2 and the bridge was gone.
        drv = {k: v for k, v in doc["miners"][0]["driver"].items() if k != "password"}
        doc["miners"][0]["driver"] = {**drv, "password_env": "HEARTH_TEST_NO_SUCH_VAR"}
        hmi_port = free_port()
        doc["hmi"] = {"listen_host": "127.0.0.1", "listen_port": hmi_port}
        doc["service"] = {"data_dir": str(tmp_path / "data"), "start_delay_max_s": 0}
        doc["ledger"] = {"enabled": False}
        doc["control"] = {**doc.get("control", {}), "tick_s": 0.5}
        path = write_site(tmp_path / "site", doc)
        env = {k: v for k, v in os.environ.items() if k != "HEARTH_TEST_NO_SUCH_VAR"}
        log = (tmp_path / "run.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run", "--config",
             str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"})
        try:
            ha = client(broker, "homeassistant")
            ha.subscribe(f"{BASE}/state/control", f"{BASE}/availability")
            ctl = ha.wait_for(f"{BASE}/state/control",
                              lambda m: bool(m.json().get("safe_mode")), 60).json()
            assert "HEARTH_TEST_NO_SUCH_VAR" in ctl["safe_mode"], ctl
            assert ctl["total_target_w"] in (0, None) and "hold" in ctl["trips"]
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            # The bridge answers: the config can be read (and fixed) remotely.
            inst = client(broker, "installer")
            reply = f"{BASE}/reply/installer/{uuid.uuid4().hex[:8]}"
            inst.subscribe(reply)
            got = inst.request(f"{BASE}/config/get", b"{}", reply, b"g").json()
            assert got["ok"] is True
            # The HMI is up and says why the miners are off.
            url = f"http://127.0.0.1:{hmi_port}"
            brokerkit.wait_until(lambda: _get(url) is not None, TIMEOUT_S, "the HMI")
            state = _get(url)
            assert state is not None
            details = " ".join(a["detail"] for a in state["alarms"])
            assert "safe mode" in details and "HEARTH_TEST_NO_SUCH_VAR" in details, state
            # A fixed config is saved; the service then exits for systemd to restart it.
            fixed = {"patch": {"miners": [
                {**m, "driver": {**drv, "password": "x"}} if m["name"] == "s9" else m
                for m in got["config"]["miners"]]}}
            ans = inst.request(f"{BASE}/config/set", json.dumps(fixed), reply, b"s").json()
            assert ans["ok"] is True, ans
            assert proc.wait(30) == 75, (tmp_path / "run.log").read_text()[-3000:]
            ha.close()
            inst.close()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            log.close()


def _get(url: str) -> dict[str, object] | None:
    try:
        r = httpx.get(f"{url}/api/state", timeout=2)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    out: dict[str, object] = r.json()
    return out

