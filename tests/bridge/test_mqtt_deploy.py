"""The example broker config in deploy/mosquitto runs as written (paths and ports moved
into a temp dir): anonymous refused, TLS listener up, the ACL in force."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import brokerkit
from mqtt_testkit import ACL_TEXT, REPO, TestClient


def test_the_example_mosquitto_conf_starts_and_enforces_auth_and_tls(tmp_path: Path) -> None:
    pki = brokerkit.Pki.create(tmp_path / "pki")
    passwd = tmp_path / "hearth.passwd"
    passwd.touch(mode=0o600)
    for user, pw in (("hearth", "a"), ("installer", "b"), ("homeassistant", "c")):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
    (tmp_path / "hearth.acl").write_text(ACL_TEXT)
    plain, tls = brokerkit.free_port(), brokerkit.free_port()
    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    conf = conf.replace("/etc/mosquitto/hearth.passwd", str(passwd))
    conf = conf.replace("/etc/mosquitto/hearth.acl", str(tmp_path / "hearth.acl"))
    conf = conf.replace("/etc/mosquitto/certs/server.crt", str(pki.server_cert))
    conf = conf.replace("/etc/mosquitto/certs/server.key", str(pki.server_key))
    conf = conf.replace("/etc/mosquitto/certs/ca.crt", str(pki.ca_file))
    conf = conf.replace("/var/lib/mosquitto/", str(tmp_path) + "/")
    conf = re.sub(r"^listener 1883 127.0.0.1$", f"listener {plain} 127.0.0.1", conf, flags=re.M)
    conf = re.sub(r"^listener 8883$", f"listener {tls} 127.0.0.1", conf, flags=re.M)
    if os.geteuid() == 0:  # stay root so the broker can read the 0700 temp dir
        conf += "\nuser root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)

    log = (tmp_path / "mosquitto.log").open("wb")
    proc = subprocess.Popen([brokerkit.MOSQUITTO, "-c", str(tmp_path / "mosquitto.conf")],
                            stdout=log, stderr=log)
    try:
        brokerkit.wait_until(lambda: (_accepts(plain) and _accepts(tls)) or proc.poll() is not None,
                             15, "the example broker to listen")
        assert proc.poll() is None, (tmp_path / "mosquitto.log").read_text()
        b = SimpleNamespace(host="127.0.0.1", port=plain, tls_port=tls, pki=pki)
        anon = TestClient(b, None, None).connect(expect_ok=False)  # type: ignore[arg-type]
        assert anon.connack is not None and anon.connack.is_failure
        anon.close()
        ha = TestClient(b, "homeassistant", "c", tls=True).connect()  # type: ignore[arg-type]
        rc = ha.publish("hearth/x/config/set", b"{}")
        assert rc is not None and rc.value == 0x87  # the ACL is in force
        ha.close()
        TestClient(b, "hearth", "a").connect().close()  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
