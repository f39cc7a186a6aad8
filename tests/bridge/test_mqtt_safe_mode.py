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
import pytest
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
            # No terms feed runs in safe mode: pushed terms are refused, not silently dropped.
            terms = {"difficulty": 1.4e14, "reward_sats": 315_000_000, "btc_price": 80000,
                     "currency": "EUR"}
            ans = inst.request(f"{BASE}/cmd/bitcoin_terms", json.dumps(terms), reply,
                               b"t").json()
            assert ans["ok"] is False and "safe mode" in ans["errors"][0]["reason"], ans
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



def _run(path: Path, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run", "--config",
         str(path)], stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, log_path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.slow(18)
def test_a_site_file_that_does_not_validate_or_parse_runs_in_safe_mode(tmp_path: Path) -> None:
    """Parses but fails validation -> safe mode from its own sections; fixed by a patch;
    the next normal start keeps a last good copy; a file that no longer parses -> safe mode
    reached through that copy, fixed by saving a whole document. Before: exit 2 each time."""
    from controller.config import load_site

    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as broker:
        doc = site_doc(broker)
        hmi_port = free_port()
        doc["hmi"] = {"listen_host": "127.0.0.1", "listen_port": hmi_port}
        doc["service"] = {"data_dir": str(tmp_path / "data"), "start_delay_max_s": 0}
        doc["ledger"] = {"enabled": False}
        doc["control"] = {**doc.get("control", {}), "tick_s": 0.5, "stale_timeout_s": 1e12}
        path = write_site(tmp_path / "site", doc)
        last_good = path.with_name("site.toml.last-good")
        ha = client(broker, "homeassistant")
        ha.subscribe(f"{BASE}/state/control")
        inst = client(broker, "installer")
        reply = f"{BASE}/reply/installer/{uuid.uuid4().hex[:8]}"
        inst.subscribe(reply)

        # 1. Valid TOML, invalid site: safe mode names the field; the HMI shows it.
        proc, log_path = _run(path, tmp_path, "invalid")
        try:
            mark = ha.mark()
            ctl = ha.wait_for(f"{BASE}/state/control",
                              lambda m: bool(m.json().get("safe_mode")), 60, mark).json()
            assert "control.stale_timeout_s" in ctl["safe_mode"], ctl
            assert ctl["total_target_w"] in (0, None) and "hold" in ctl["trips"]
            url = f"http://127.0.0.1:{hmi_port}"
            brokerkit.wait_until(lambda: _get(url) is not None, TIMEOUT_S, "the HMI")
            state = _get(url)
            assert state is not None
            assert "control.stale_timeout_s" in " ".join(a["detail"] for a in state["alarms"])
            got = inst.request(f"{BASE}/config/get", b"{}", reply, b"g1").json()
            assert got["ok"] is True and got["config"]["control"]["stale_timeout_s"] == 1e12
            # a patch is still validated whole: a still-broken file is refused
            bad = {"patch": {"control": {"tick_s": 0.5}}}
            ans = inst.request(f"{BASE}/config/set", json.dumps(bad), reply, b"s0").json()
            assert ans["ok"] is False and proc.poll() is None, ans
            fix = {"patch": {"control": {"stale_timeout_s": 10}}}
            ans = inst.request(f"{BASE}/config/set", json.dumps(fix), reply, b"s1").json()
            assert ans["ok"] is True, ans
            assert proc.wait(30) == 75, log_path.read_text()[-3000:]
        finally:
            _stop(proc)
        assert load_site(path).control.stale_timeout_s == 10
        assert not last_good.exists()  # only a normal start keeps one

        # 2. The fixed file runs normally and is kept as the last good copy.
        proc, log_path = _run(path, tmp_path, "fixed")
        try:
            mark = ha.mark()
            ctl = ha.wait_for(f"{BASE}/state/control", lambda m: "safe_mode" in m.json(), 60,
                              mark).json()
            assert ctl["safe_mode"] is None, ctl
            brokerkit.wait_until(last_good.exists, TIMEOUT_S, "the last good copy")
            assert last_good.read_bytes() == path.read_bytes()
        finally:
            _stop(proc)
        assert proc.returncode == 0, log_path.read_text()[-3000:]

        # 3. A hand edit that breaks the TOML: safe mode through the last good copy.
        path.write_text(path.read_text() + "\n[control\ntick_s = 1\n")
        proc, log_path = _run(path, tmp_path, "unparsable")
        try:
            mark = ha.mark()
            ctl = ha.wait_for(f"{BASE}/state/control",
                              lambda m: bool(m.json().get("safe_mode")), 60, mark).json()
            assert "TOML syntax error" in ctl["safe_mode"], ctl
            assert "site.toml.last-good" in ctl["safe_mode"], ctl
            got = inst.request(f"{BASE}/config/get", b"{}", reply, b"g2").json()
            assert got["ok"] is True and got["config"]["control"]["stale_timeout_s"] == 10
            # get -> edit -> save a whole document; redacted secrets come from that copy
            whole = {**got["config"], "site": {**got["config"]["site"], "name": "repaired"}}
            ans = inst.request(f"{BASE}/config/set", json.dumps({"config": whole}), reply,
                               b"s2").json()
            assert ans["ok"] is True, ans
            assert proc.wait(30) == 75, log_path.read_text()[-3000:]
        finally:
            _stop(proc)
        repaired = load_site(path)
        assert repaired.site.name == "repaired"
        assert repaired.miners[0].driver["password"] == "s9-driver-secret"
        ha.close()
        inst.close()


def test_nothing_to_be_reached_through_still_exits_2(tmp_path: Path) -> None:
    """No safe mode without a bridge or an HMI to repair it through: exit 2, with why
    (systemd's RestartPreventExitStatus=2 then keeps it from a restart loop)."""
    d = tmp_path / "site"
    d.mkdir()
    path = d / "site.toml"
    path.write_text("[site\nid = 'x'\n")  # does not parse, and no last good copy
    r = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--config", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "TOML syntax error" in r.stderr and "no last good copy" in r.stderr, r.stderr
    # parses, but its [hmi] does not validate and there is no [mqtt]: nothing to reach
    path.write_text('[site]\nid = "x"\n[hmi]\nlisten_port = 0\n')
    r = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--config", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "hmi.listen_port" in r.stderr and "no usable [mqtt] or [hmi]" in r.stderr, r.stderr
