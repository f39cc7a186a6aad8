"""brokerkit itself: a real Mosquitto with auth, ACL, TLS; restart on the same port."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import brokerkit
import paho.mqtt.client as mqtt
import pytest
from mqtt_testkit import TestClient
from paho.mqtt.enums import CallbackAPIVersion

ACL = """
user alice
topic readwrite a/#
user bob
topic read a/#
"""


def test_auth_acl_and_restart_on_the_same_port(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users={"alice": "pa", "bob": "pb"}, acl=ACL) as b:
        port = b.port
        anon = TestClient(b, None, None).connect(expect_ok=False)
        assert anon.connack is not None and anon.connack.is_failure
        anon.close()
        wrong = TestClient(b, "alice", "nope").connect(expect_ok=False)
        assert wrong.connack is not None and wrong.connack.is_failure
        wrong.close()

        alice = TestClient(b, "alice", "pa").connect()
        bob = TestClient(b, "bob", "pb").connect()
        bob.subscribe("a/#")
        assert alice.publish("a/x", b"1") is not None
        bob.wait_for("a/x", lambda m: m.payload == b"1")
        rc = bob.publish("a/x", b"from-bob")  # denied by the ACL: PUBACK "not authorized"
        assert rc is not None and rc.value == 0x87
        alice.publish("a/x", b"2")
        bob.wait_for("a/x", lambda m: m.payload == b"2")
        assert [m.payload for m in bob.on("a/x")] == [b"1", b"2"]

        b.restart()
        assert b.port == port and b.running
        again = TestClient(b, "alice", "pa").connect()
        again.close()
        for c in (alice, bob):
            c.close()
        b.kill()
        assert not b.running
    assert "mosquitto version" in b.log_text()


def test_tls_with_test_ca_and_client_certificate(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users={"u": "p"}, require_client_cert=True) as b:
        assert b.pki is not None and b.tls_port is not None
        ok = TestClient(b, "u", "p", tls=True, client_cert=b.pki.client_cert("dev1")).connect()
        ok.subscribe("t")
        ok.publish("t", b"over tls")
        ok.wait_for("t")
        ok.close()
        # Without a client certificate the broker ends the TLS session before any MQTT.
        ctx = ssl.create_default_context(cafile=str(b.pki.ca_file))
        with (
            socket.create_connection((b.host, b.tls_port), timeout=10) as raw,
            pytest.raises((ssl.SSLError, ConnectionError)),
            ctx.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            s.sendall(b"\x10\x00")  # handshake done (TLS 1.2) or deferred (1.3)
            if not s.recv(1):
                raise ConnectionError("closed by the broker")

def test_a_client_that_does_not_trust_the_ca_is_refused(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users={"u": "p"}, tls=True) as b:
        assert b.tls_port is not None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.tls_set(cert_reqs=ssl.CERT_REQUIRED)  # system CAs only
        with pytest.raises(ssl.SSLCertVerificationError):
            c.connect(b.host, b.tls_port)
