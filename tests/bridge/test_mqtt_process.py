"""The bridge as a separate process: Last Will on a kill, retained state expiring, and
`offline` on a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import brokerkit
from mqtt_testkit import (
    ACL_TEXT,
    SITE,
    TIMEOUT_S,
    USERS,
    client,
    retained_snapshot,
    site_doc,
    write_site,
)

BASE = f"hearth/{SITE}"
CHILD = Path(__file__).with_name("mqtt_bridge_child.py")


@contextmanager
def bridge_process(site: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(CHILD), str(site)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "connected", (line, proc.stderr.read() if proc.stderr else "")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT_S)


def _retained(broker: brokerkit.Broker) -> dict[str, bytes]:
    got = retained_snapshot(broker, "homeassistant", USERS["homeassistant"], f"{BASE}/#")
    return {t: m.payload for t, m in got.items()}


def test_killed_process_goes_offline_by_last_will_and_its_state_expires(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as broker:
        doc = site_doc(broker, state_expiry_s=3, telemetry_refresh_s=1.0)
        site = write_site(tmp_path / "site", doc)
        ha = client(broker, "homeassistant")
        ha.subscribe(f"{BASE}/availability")
        with bridge_process(site) as proc:
            brokerkit.wait_until(lambda: f"{BASE}/state/power" in _retained(broker),
                                 TIMEOUT_S, "retained state")
            assert _retained(broker)[f"{BASE}/availability"] == b"online"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=TIMEOUT_S)
        ha.wait_for(f"{BASE}/availability", lambda m: m.payload == b"offline")
        # The retained state expires (3 s) so nobody takes it for live values; the
        # availability stays, retained, saying offline.
        brokerkit.wait_until(
            lambda: not [t for t in _retained(broker) if "/state/" in t],
            TIMEOUT_S, "retained state to expire")
        assert _retained(broker)[f"{BASE}/availability"] == b"offline"
        ha.close()


def test_clean_stop_publishes_offline(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as broker:
        site = write_site(tmp_path / "site", site_doc(broker))
        ha = client(broker, "homeassistant")
        ha.subscribe(f"{BASE}/availability")
        with bridge_process(site) as proc:
            ha.wait_for(f"{BASE}/availability", lambda m: m.payload == b"online")
            mark = ha.mark()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=TIMEOUT_S) == 0
        ha.wait_for(f"{BASE}/availability", lambda m: m.payload == b"offline", after=mark)
        assert proc.stderr is not None and "MQTT bridge stopped" in proc.stderr.read()
        ha.close()
