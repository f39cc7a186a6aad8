"""`hearth demo` (what `make demo` runs) opens on a lived-in site: yesterday's chart, money
and heat from the ledger within a minute, the tank kept (its satellite over MQTT), and the
wall page's clock on the replayed day, not this machine's."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from controller.bridge.connection import BrokerSettings
from controller.config import parse_site
from hil.demo import LIBFAKETIME, absolute_paths
from hil.rig.broker import MOSQUITTO, free_port

REPO = Path(__file__).resolve().parents[2]


def wait(cond: Any, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 300) -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if got := cond():
            return got
        assert proc.poll() is None, f"hearth demo exited before {what}"
        time.sleep(0.5)
    raise AssertionError(f"no {what} after {timeout_s} s")


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


@pytest.mark.skipif(not Path(MOSQUITTO).exists() or not LIBFAKETIME.exists(),
                    reason="needs Debian's mosquitto and faketime")
def test_demo_opens_with_yesterday_lived_and_the_replayed_time(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "demo"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.demo", "--out", str(out), "--hmi-port", str(port),
         "--seconds", "600"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    got: dict[str, Any] = {}
    try:
        # No timing is asserted (a shared CI machine is no stopwatch; on an idle one the
        # page answers ~20 s after start): what is asserted is that money, heat and the
        # chart are full the moment the page first answers, since they come from the day
        # lived before the start, not from ticks that have yet to run.
        wait(lambda: (s := _get(f"{base}/api/state")) is not None and s.get("available"),
             proc, "the wall page's first tick")
        got["after_s"] = time.monotonic() - t0
        got["rev"] = _get(f"{base}/api/revenue")
        got["hist"] = _get(f"{base}/api/history")
        # The tank's temperature arrives with the satellite's first telemetry (5 s period).
        got["state"] = wait(lambda: (s := _get(f"{base}/api/state")) is not None
                            and s.get("tank") and s["tank"]["temp_c"] is not None and s,
                            proc, "the tank's temperature")
    finally:
        proc.send_signal(signal.SIGINT)
        text = proc.communicate(timeout=90)[0].decode(errors="replace")
    print(f"wall page live {got.get('after_s', float('nan')):.0f} s after start")
    assert got.get("rev") and got["rev"]["available"] and Rev(got["rev"]).filled(), \
        (got.get("rev"), text[-3000:])
    assert got.get("hist") and len(got["hist"]["points"]) >= 1400, text[-3000:]
    # The page's clock is the replayed day (the trace's, 2015-04-21, from 10:00 UTC).
    assert got["state"]["at"].startswith("2015-04-21T10:0"), got["state"]["at"]
    # Yesterday and this morning are in the month; today holds the morning so far.
    month, today = got["rev"]["month"], got["rev"]["today"]
    assert float(month["heat_value"]) > float(today["heat_value"]) > 0
    assert month["sats"] > today["sats"] > 0
    # The 24 h chart reaches back a day from the replay's start.
    pts = got["hist"]["points"]
    assert pts[-1]["t"] - pts[0]["t"] >= 23.5 * 3600
    assert max(p["pv_w"] or 0 for p in pts) > 5000  # yesterday's noon is on it
    assert "one-time setup code" in text and "hearth-run.log" in text
    assert proc.returncode == 0, text[-3000:]


class Rev:
    def __init__(self, r: dict[str, Any]) -> None:
        self.r = r

    def filled(self) -> bool:
        t = self.r["today"]
        return float(t["heat_value"]) > 0 and t["sats"] > 0 and float(t["net"]) != 0


def test_a_relative_password_file_in_a_custom_site_still_works(tmp_path: Path) -> None:
    """A DEMO_SITE of one's own with `[mqtt] password_file = "secrets/mqtt.pw"`: the site
    file the demo writes elsewhere still finds it."""
    own = tmp_path / "mysite"
    (own / "secrets").mkdir(parents=True)
    (own / "secrets" / "mqtt.pw").write_text("s3cret\n")
    (own / "secrets" / "mqtt.pw").chmod(0o600)
    site = own / "site.toml"
    shutil.copyfile(REPO / "hil/sites/house-10kwp.toml", site)
    with site.open("a") as f:
        f.write('\n[mqtt]\nhost = "127.0.0.1"\nusername = "hearth"\n'
                'password_file = "secrets/mqtt.pw"\n')
    import tomllib

    d = absolute_paths(tomllib.loads(site.read_text()), site.parent)
    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    (elsewhere / "site.toml").write_bytes(tomli_w.dumps(d).encode())
    cfg = parse_site(d, str(elsewhere / "site.toml"))
    assert cfg.mqtt is not None
    b = BrokerSettings.from_section(cfg.mqtt, elsewhere, cfg.site.id)
    assert b.password == "s3cret"
    assert d["mqtt"]["password_file"] == str((own / "secrets" / "mqtt.pw").resolve())
