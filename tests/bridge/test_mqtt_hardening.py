"""Hardening (issue 17) against a real Mosquitto: what an adversarial probe found open on
the MQTT side. Each test failed before its fix."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import brokerkit
import pytest
from mqtt_testkit import ACL_TEXT, SITE, USERS, RunningBridge, client, installer_cli, reply_topic

from controller.errors import InputError

BASE = f"hearth/{SITE}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[brokerkit.Broker]:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as b:
        yield b


@pytest.fixture
def rb(tmp_path: Path, broker: brokerkit.Broker) -> Iterator[RunningBridge]:
    with RunningBridge(tmp_path / "site", broker) as r:
        yield r


# -- item 1: config/set runs the same validation as `hearth config check` -----------------

def test_config_set_refuses_driver_settings_the_service_could_not_start_with(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    inst = client(broker, "installer")
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    before = rb.path.read_bytes()
    doc = tomllib.loads(before.decode())
    doc["miners"][0]["driver"] = {"api": "whatsminer-9000", "host": "192.0.2.10"}
    doc["miners"][1]["driver"] = {**doc["miners"][1]["driver"], "port": "abc"}
    ans = inst.request(f"{BASE}/config/set", json.dumps({"config": doc}), reply, b"1").json()
    assert ans["ok"] is False, ans
    fields = {e["field"] for e in ans["errors"]}
    assert {"miners[0].driver.api", "miners[1].driver.port"} <= fields, ans
    assert rb.path.read_bytes() == before and rb.rec.configs == []
    inst.close()


# -- item 2: the response topic is checked before anything is applied ---------------------
# Mosquitto 2.0 drops a client that sends a wildcard response topic, but other brokers (and
# older ones) pass it on: the bridge must not rely on the broker. The request is handed to
# the bridge's worker as paho delivers it; the answers go out through the real broker.

@pytest.mark.parametrize("suffix", ["x/#", "x/+/y", "+", "x/\u0000", "x" * 70_000])
def test_a_response_topic_with_wildcards_is_refused_before_applying(
    broker: brokerkit.Broker, rb: RunningBridge, suffix: str,
) -> None:
    from controller.bridge.bridge import _Request

    ha = client(broker, "homeassistant")
    ha.subscribe(f"{BASE}/cmd/pause_all/result")
    inst = client(broker, "installer")
    inst.subscribe(f"{BASE}/config/result")
    bad = f"{BASE}/reply/installer/{suffix}"
    rb.bridge._handle(_Request(f"{BASE}/cmd/pause_all", b'{"paused": true}', bad, b"c1"))
    ans = ha.wait_for(f"{BASE}/cmd/pause_all/result")
    assert ans.json()["ok"] is False
    assert ans.json()["errors"][0]["field"] == "response_topic", ans.json()
    assert ans.properties["CorrelationData"] == b"c1"
    assert rb.rec.commands == []  # not applied

    before = rb.path.read_bytes()
    mark = inst.mark()
    body = json.dumps({"patch": {"site": {"name": "x"}}}).encode()
    rb.bridge._handle(_Request(f"{BASE}/config/set", body, bad, b"c2"))
    ans = inst.wait_for(f"{BASE}/config/result", after=mark)
    assert ans.json()["ok"] is False
    assert ans.json()["errors"][0]["field"] == "response_topic"
    assert rb.path.read_bytes() == before  # not written
    assert rb.bridge.stats.errors == []  # refused, not an internal error
    inst.close()
    ha.close()


# -- item 5: config/set does not coerce types or write unbounded strings -------------------

def test_config_set_refuses_coerced_types_nul_and_huge_strings(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    inst = client(broker, "installer")
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    before = rb.path.read_bytes()
    for patch, field in (({"control": {"tick_s": "1"}}, "control.tick_s"),
                         ({"site": {"name": "a\u0000b"}}, "site.name"),
                         ({"site": {"name": "x" * 60_000}}, "site.name")):
        ans = inst.request(f"{BASE}/config/set", json.dumps({"patch": patch}), reply,
                           b"5").json()
        assert ans["ok"] is False, ans
        assert [e["field"] for e in ans["errors"]] == [field], ans
    assert rb.path.read_bytes() == before
    inst.close()


# -- item 9: an oversize `installer push` is refused by size, not left unanswered ----------

def _push_setup(tmp_path: Path, broker: brokerkit.Broker) -> list[str]:
    pw = tmp_path / "installer.pw"
    pw.write_text(USERS["installer"] + "\n")
    pw.chmod(0o600)
    return ["--broker", f"127.0.0.1:{broker.port}", "--site", SITE, "--username",
            "installer", "--password-file", str(pw), "--timeout", "10"]


def _big_doc(tmp_path: Path, rb: RunningBridge, pad: int) -> Path:
    doc = tomllib.loads(rb.path.read_text())
    doc["site"]["name"] = "padding " * (pad // 8)  # the site validation refuses it later
    out = tmp_path / "big.json"
    out.write_text(json.dumps(doc))
    return out


def test_a_push_above_the_controllers_limit_is_refused_before_sending(
    tmp_path: Path, broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    common = _push_setup(tmp_path, broker)
    big = _big_doc(tmp_path, rb, 300_000)  # above the default max_config_bytes (256 KiB)
    with pytest.raises(InputError) as ei:
        installer_cli(["installer", "push", str(big), *common])
    assert "too large" in ei.value.render() and "max_config_bytes" in ei.value.render()


def test_a_push_above_the_brokers_packet_size_says_so(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT,
                          extra_conf="max_packet_size 20000\n") as broker, \
            RunningBridge(tmp_path / "site", broker) as rb:
        common = _push_setup(tmp_path, broker)
        big = _big_doc(tmp_path, rb, 40_000)  # under Hearth's limit, over the broker's
        t0 = time.monotonic()
        with pytest.raises(InputError) as ei:
            installer_cli(["installer", "push", str(big), *common])
        assert "broker" in ei.value.render() and "20000" in ei.value.render(), \
            ei.value.render()
        assert time.monotonic() - t0 < 8  # told at once, not after the timeout
