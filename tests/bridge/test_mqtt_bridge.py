"""The bridge against a real Mosquitto (password file + the ACL from deploy/mosquitto):
telemetry, commands, provisioning, HA discovery, ACL, TLS, broker restart, fuzzing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brokerkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_testkit import (
    ACL_TEXT,
    S9_SECRET,
    SITE,
    TIMEOUT_S,
    USERS,
    Recorder,
    RunningBridge,
    TestClient,
    client,
    ha_discovery_problems,
    reply_topic,
    retained_snapshot,
    site_doc,
    write_site,
)

from controller.bridge import (
    Bridge,
    ConfigStore,
    MinerStatus,
    PauseAll,
    SetMinerEnabled,
    SetTankTarget,
    StateSnapshot,
)
from controller.bridge.provisioning import REDACTED
from controller.config import load_site

BASE = f"hearth/{SITE}"
DISCOVERY = "homeassistant/device/hearth_demo_house/config"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[brokerkit.Broker]:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as b:
        yield b


@pytest.fixture
def rb(tmp_path: Path, broker: brokerkit.Broker) -> Iterator[RunningBridge]:
    with RunningBridge(tmp_path / "site", broker) as r:
        yield r


def snap(grid_w: float = -500.0, s9_w: float = 900.0, **kw: Any) -> StateSnapshot:
    return StateSnapshot(
        grid_power_w=grid_w, pv_power_w=3000.0, battery_power_w=0.0, soc_pct=60.0,
        tank_temp_c=50.0, mode="grid", limiter="grid", total_target_w=s9_w,
        miners={"s9": MinerStatus(power_w=s9_w, hashrate_ths=s9_w / 84, state="running")},
        **kw,
    )


# -- telemetry -------------------------------------------------------------------------------

def test_state_is_retained_with_message_expiry_and_availability_is_online(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    rb.bridge.publish_state(snap())
    ha = client(broker, "homeassistant")
    ha.subscribe(f"{BASE}/state/#")
    ha.wait_for(f"{BASE}/state/power", lambda m: m.json()["grid_power_w"] == -500)
    ha.wait_for(f"{BASE}/state/miners/bitaxe-2")  # the last topic of a publishing round
    ha.close()
    retained = retained_snapshot(broker, "homeassistant", USERS["homeassistant"], f"{BASE}/#")
    assert retained[f"{BASE}/availability"].payload == b"online"
    assert "MessageExpiryInterval" not in retained[f"{BASE}/availability"].properties
    for suffix in ("power", "battery", "tank", "control", "miners/s9", "miners/bitaxe-1"):
        m = retained[f"{BASE}/state/{suffix}"]
        assert 0 < m.properties["MessageExpiryInterval"] <= 30, suffix
    power = retained[f"{BASE}/state/power"].json()
    assert power == {"grid_power_w": -500.0, "pv_power_w": 3000.0, "miner_power_w": 900.0,
                     "house_power_w": 1600.0, "battery_power_w": 0.0}
    assert retained[f"{BASE}/state/miners/s9"].json()["hashrate_ths"] == round(900 / 84, 3)


def test_telemetry_is_rate_limited_and_refreshed(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    ha = client(broker, "homeassistant")
    ha.subscribe(f"{BASE}/state/power")
    topic = f"{BASE}/state/power"
    t0 = time.monotonic()
    for i in range(100):  # a value that changes every 'tick', ticks 5 ms apart
        rb.bridge.publish_state(snap(grid_w=-float(i)))
        time.sleep(0.005)
    elapsed = time.monotonic() - t0
    last = ha.wait_for(topic, lambda m: m.json()["grid_power_w"] == -99)  # the newest wins
    n = len(ha.on(topic))
    # interval 0.2 s: at most one message per interval (+ the first and the final one).
    assert n <= elapsed / 0.2 + 3, (n, elapsed)
    assert n < 50
    # Unchanged, it is published again within telemetry_refresh_s (1 s) so it never expires.
    again = ha.wait_for(topic, lambda m: m.at > last.at and m.payload == last.payload,
                        timeout_s=5)
    assert again.properties["MessageExpiryInterval"] <= 30
    ha.close()


def test_the_service_publisher_turns_ticks_into_state_and_closes_offline(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    from datetime import UTC, datetime

    from controller.bridge.service_glue import BridgePublisher, apply_command
    from controller.control.overrides import NO_OVERRIDES
    from controller.control.types import Commands, Measurements, MinerCommand, MinerReading, Reading
    from controller.runtime.ports import TickRecord

    ov = apply_command(apply_command(NO_OVERRIDES, PauseAll(True)), SetTankTarget(57.0))
    ov = apply_command(ov, SetMinerEnabled("bitaxe-2", False))
    tick = TickRecord(
        at_utc=datetime(2026, 5, 1, 12, tzinfo=UTC), monotonic_s=100.0,
        measurements=Measurements(grid_power_w=Reading(120.0, 99.5),
                                  tank_temp_c=Reading(49.0, 99.0),
                                  miners={"s9": MinerReading(0.0, 0.0, False, 99.0)}),
        commands=Commands((MinerCommand("s9", False, 0.0),), 0.0, "grid", "hold"),
        overrides=ov, debug=None, work_s=0.001)
    ha = client(broker, "homeassistant")
    ha.subscribe(f"{BASE}/state/#", f"{BASE}/availability")
    pub = BridgePublisher(rb.bridge)
    pub.publish(tick)
    control = ha.wait_for(f"{BASE}/state/control").json()
    assert control["paused"] is True and control["limiter"] == "hold"
    assert control["tank_target_c"] == 57.0
    assert ha.wait_for(f"{BASE}/state/tank").json() == {"tank_temp_c": 49.0,
                                                        "tank_target_c": 57.0}
    assert ha.wait_for(f"{BASE}/state/miners/s9").json()["state"] == "paused"
    assert ha.wait_for(f"{BASE}/state/miners/bitaxe-2").json()["enabled"] is False
    mark = ha.mark()
    asyncio.run(pub.close())
    ha.wait_for(f"{BASE}/availability", lambda m: m.payload == b"offline", after=mark)
    ha.close()


# -- commands ----------------------------------------------------------------------------------

def test_commands_are_answered_on_the_response_topic_with_correlation_data(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    ha = client(broker, "homeassistant")
    reply = reply_topic(BASE, "homeassistant")
    ha.subscribe(reply, f"{BASE}/cmd/+/result")
    ans = ha.request(f"{BASE}/cmd/tank_target", b'{"target_c": 58.5}', reply, b"corr-1")
    assert ans.json() == {"ok": True, "command": "tank_target",
                          "applied": {"target_c": 58.5}}
    assert not ans.retain
    assert rb.rec.commands == [SetTankTarget(58.5)]

    bad = ha.request(f"{BASE}/cmd/tank_target", b'{"target_c": 95}', reply, b"corr-2")
    assert bad.json()["ok"] is False
    assert bad.json()["errors"] == [{"field": "target_c",
                                     "reason": "must be above min_c (40) and below max_c (70) °C"}]
    assert len(rb.rec.commands) == 1

    # Without a response topic (Home Assistant, MQTT 3 clients): the .../result fallback,
    # still carrying the correlation data and the optional "id" of the payload.
    mark = ha.mark()
    ha.publish(f"{BASE}/cmd/pause_all", b'{"paused": true, "id": "ha-7"}', correlation=b"c3")
    res = ha.wait_for(f"{BASE}/cmd/pause_all/result", after=mark)
    assert res.json() == {"ok": True, "command": "pause_all", "id": "ha-7",
                          "applied": {"paused": True}}
    assert res.properties["CorrelationData"] == b"c3"

    # A response topic outside hearth/<site>/reply/ is refused and nothing is applied.
    mark = ha.mark()
    ha.publish(f"{BASE}/cmd/pause_all", b'{"paused": false}', response_topic="homeassistant/x",
               correlation=b"c4")
    res = ha.wait_for(f"{BASE}/cmd/pause_all/result", after=mark)
    assert res.json()["errors"][0]["field"] == "response_topic"
    assert len(rb.rec.commands) == 2

    # The service may refuse a valid command; the answer says why.
    rb.rec.refuse_commands = True
    ans = ha.request(f"{BASE}/cmd/mode", b'{"mode": "heating"}', reply, b"c5")
    assert ans.json()["errors"] == [{"field": "", "reason": "the controller is shutting down"}]
    ha.close()


def test_a_retained_command_is_refused_deleted_and_not_applied(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    ha = client(broker, "homeassistant")
    ha.subscribe(f"{BASE}/cmd/pause_all/result")
    ha.publish(f"{BASE}/cmd/pause_all", b'{"paused": true}', retain=True)
    ans = ha.wait_for(f"{BASE}/cmd/pause_all/result").json()
    assert ans["ok"] is False and ans["errors"][0]["field"] == "retain"
    brokerkit.wait_until(lambda: f"{BASE}/cmd/pause_all" not in retained_snapshot(
        broker, "hearth", USERS["hearth"], f"{BASE}/cmd/#"), TIMEOUT_S, "it to be deleted")
    # After a reconnect nothing comes back to be re-applied.
    broker.restart()
    brokerkit.wait_until(lambda: rb.bridge.stats.connects >= 2, TIMEOUT_S, "reconnect")
    reply = reply_topic(BASE, "homeassistant")
    ha2 = client(broker, "homeassistant")
    ha2.subscribe(reply)
    # The bridge's SUBSCRIBE after the reconnect may reach the restarted broker after a
    # first request does (MQTT orders per connection only): ask again until it answers.
    answer = None
    for attempt in range(5):
        try:
            answer = ha2.request(f"{BASE}/cmd/mode", b'{"mode": "grid"}', reply,
                                 f"{attempt}".encode(), timeout_s=3.0)
            break
        except AssertionError:
            continue
    assert answer is not None and answer.json()["ok"], "no answer after the reconnect"
    # The retained pause_all was never applied, before or after the reconnect.
    applied = [type(c).__name__ for c in rb.rec.commands]
    assert applied and set(applied) == {"SetMode"}, applied
    ha2.close()
    ha.close()


@pytest.mark.parametrize(("topic", "payload", "field", "reason"), [
    ("cmd/mode", b"grid", "payload", "not JSON"),
    ("cmd/mode", b'{"mode": 1}', "mode", "valid string"),
    ("cmd/miner_power", b'{"miner": "s9", "power_w": "lots"}', "power_w", "valid number"),
    ("cmd/miner_power", b'{"miner": "s9"}', "power_w", "required key is missing"),
    ("cmd/dr_cap", b'{"cap_w": 1}' + b" " * 5000, "payload", "too large"),
    ("cmd/selfdestruct", b"{}", "command", "unknown command 'selfdestruct'"),
    ("cmd/pause_all", b"\xc3\x28", "payload", "not UTF-8"),
    ("cmd/pause_all", b"", "payload", "is empty"),
    ("cmd/miner_enable", b'{"miner": "\\ud800", "enabled": true}', "miner", "no miner named"),
])
def test_malformed_commands_are_refused_with_a_reason(
    broker: brokerkit.Broker, rb: RunningBridge, topic: str, payload: bytes, field: str,
    reason: str,
) -> None:
    ha = client(broker, "homeassistant")
    reply = reply_topic(BASE, "homeassistant")
    ha.subscribe(reply)
    ans = ha.request(f"{BASE}/{topic}", payload, reply, b"x").json()
    assert ans["ok"] is False
    assert ans["errors"][0]["field"] == field and reason in ans["errors"][0]["reason"], ans
    assert rb.rec.commands == []
    assert rb.bridge.stats.refused >= 1 and rb.bridge.stats.errors == []
    ha.close()


def test_a_flood_of_requests_is_answered_busy_not_queued_without_bound(
    tmp_path: Path, broker: brokerkit.Broker,
) -> None:
    gate = threading.Event()

    def slow_service(cmd: object) -> None:
        gate.wait(TIMEOUT_S)  # the service is stuck; requests pile up

    store = ConfigStore(write_site(tmp_path / "s", site_doc(broker)))
    b = Bridge(store, slow_service, request_queue_size=2)
    b.start()
    try:
        assert b.wait_connected(TIMEOUT_S)
        ha = client(broker, "homeassistant")
        reply = reply_topic(BASE, "homeassistant")
        ha.subscribe(reply)
        for i in range(10):
            ha.publish(f"{BASE}/cmd/pause_all", b'{"paused": true}', response_topic=reply,
                       correlation=str(i).encode())
        brokerkit.wait_until(lambda: len(ha.on(reply)) >= 7, TIMEOUT_S, "busy answers")
        gate.set()
        brokerkit.wait_until(lambda: len(ha.on(reply)) == 10, TIMEOUT_S, "every answer")
        answers = [m.json() for m in ha.on(reply)]
        busy = [a for a in answers if not a["ok"]]
        assert len(busy) == b.stats.dropped_busy >= 7
        assert all("busy" in a["errors"][0]["reason"] for a in busy)
        assert sorted(m.properties["CorrelationData"] for m in ha.on(reply)) == \
            sorted(str(i).encode() for i in range(10))
        ha.close()
    finally:
        gate.set()
        b.stop()


# -- provisioning ------------------------------------------------------------------------------

def test_invalid_config_is_refused_with_every_error_and_nothing_changes(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    inst = client(broker, "installer")
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    before = rb.path.read_bytes()
    patch = {"tank": {"max_c": 50}, "miners": [{"name": "s9"}], "control": {"tick_s": 0}}
    ans = inst.request(f"{BASE}/config/set", json.dumps({"patch": patch}), reply, b"1").json()
    assert ans["ok"] is False and ans["op"] == "set"
    fields = {e["field"] for e in ans["errors"]}
    assert {"tank.max_c", "control.tick_s", "miners[0].kind", "miners[0].actuation",
            "miners[0].min_power_w", "miners[0].max_power_w", "miners[0].efficiency"} <= fields
    assert all(e["reason"] for e in ans["errors"])
    assert rb.path.read_bytes() == before
    assert not rb.store.prev_path.exists() and rb.rec.configs == []

    whole = tomllib.loads(before.decode())
    whole["site"]["main_fuse_a"] = "lots"
    ans = inst.request(f"{BASE}/config/set", json.dumps({"config": whole}), reply, b"2").json()
    assert ans["errors"] == [{"field": "site.main_fuse_a",
                              "reason": "Input should be a valid number"}]
    ans = inst.request(f"{BASE}/config/set", b'{"conf": {}}', reply, b"3").json()
    assert {e["field"] for e in ans["errors"]} == {"conf"}
    assert rb.path.read_bytes() == before
    inst.close()


def test_valid_config_is_applied_then_rolled_back(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    rb.bridge.publish_state(StateSnapshot(miners={
        n: MinerStatus(power_w=10.0) for n in ("s9", "bitaxe-1", "bitaxe-2")}))
    inst = client(broker, "installer")
    ha = client(broker, "homeassistant")
    ha.subscribe(DISCOVERY, f"{BASE}/state/miners/bitaxe-2")
    ha.wait_for(DISCOVERY)
    ha.wait_for(f"{BASE}/state/miners/bitaxe-2")
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    original = rb.path.read_bytes()
    v0 = rb.store.version

    ans = inst.request(f"{BASE}/config/get", b"", reply, b"g").json()
    assert ans["ok"] and ans["version"] == v0
    assert ans["config"]["miners"][0]["driver"]["password"] == REDACTED
    assert S9_SECRET not in json.dumps(ans)

    # Remove a miner and raise the tank target, with the redacted document from `get`.
    doc = ans["config"]
    doc["miners"] = [m for m in doc["miners"] if m["name"] != "bitaxe-2"]
    doc["tank"]["target_c"] = 60
    mark = ha.mark()
    ans = inst.request(f"{BASE}/config/set", json.dumps({"config": doc, "if_version": v0}),
                       reply, b"s").json()
    assert ans["ok"] and ans["changed"] == ["miners", "tank"] and ans["restart_required"] == []
    assert ans["version"] != v0
    new = load_site(rb.path)
    assert [m.name for m in new.miners] == ["s9", "bitaxe-1"]
    assert new.tank is not None and new.tank.target_c == 60
    assert new.miners[0].driver["password"] == S9_SECRET  # the secret survived the round trip
    assert rb.store.prev_path.read_bytes() == original
    assert [c.tank.target_c for c in rb.rec.configs] == [60]
    assert rb.bridge.config.tank is not None and rb.bridge.config.tank.target_c == 60

    # HA: the removed miner's entities are removed ({"p": ...}), then a clean update; its
    # retained state is deleted.
    removal = ha.wait_for(DISCOVERY, lambda m: "miner_bitaxe-2_power" in m.json()["cmps"],
                          after=mark)
    assert removal.json()["cmps"]["miner_bitaxe-2_power"] == {"p": "sensor"}
    assert removal.json()["cmps"]["miner_bitaxe-2_enabled"] == {"p": "switch"}
    clean = ha.wait_for(DISCOVERY, lambda m: "miner_bitaxe-2_power" not in m.json()["cmps"],
                        after=mark)
    assert ha_discovery_problems(DISCOVERY, clean.json()) == []
    ha.wait_for(f"{BASE}/state/miners/bitaxe-2", lambda m: m.payload == b"", after=mark)
    retained = retained_snapshot(broker, "homeassistant", USERS["homeassistant"], f"{BASE}/#")
    assert f"{BASE}/state/miners/bitaxe-2" not in retained

    # A stale if_version is refused.
    ans = inst.request(f"{BASE}/config/set", json.dumps({"patch": {}, "if_version": v0}),
                       reply, b"v").json()
    assert ans["errors"][0]["field"] == "if_version"

    # Rollback: the original file (comments and all) is back and the miner reappears.
    mark = ha.mark()
    ans = inst.request(f"{BASE}/config/rollback", b"{}", reply, b"r").json()
    assert ans["ok"] and ans["version"] == v0
    assert rb.path.read_bytes() == original
    ha.wait_for(DISCOVERY, lambda m: "miner_bitaxe-2_power" in m.json()["cmps"]
                and m.json()["cmps"]["miner_bitaxe-2_power"].get("p") == "sensor"
                and len(m.json()["cmps"]["miner_bitaxe-2_power"]) > 1, after=mark)
    assert [m.name for m in rb.bridge.config.miners] == ["s9", "bitaxe-1", "bitaxe-2"]

    # Changing the broker settings is saved but needs a restart; a dry run changes nothing.
    ans = inst.request(f"{BASE}/config/set", json.dumps(
        {"patch": {"mqtt": {"keepalive_s": 60}}, "dry_run": True}), reply, b"d").json()
    assert ans["ok"] and ans["dry_run"] and rb.path.read_bytes() == original
    ans = inst.request(f"{BASE}/config/set", json.dumps(
        {"patch": {"mqtt": {"keepalive_s": 60}}}), reply, b"m").json()
    assert ans["ok"] and ans["restart_required"] == ["mqtt"]
    ans = inst.request(f"{BASE}/config/set", json.dumps({"patch": {"mqtt": None}}), reply,
                       b"n").json()
    assert ans["errors"][0]["field"] == "mqtt"
    inst.close()
    ha.close()


def test_a_service_that_cannot_apply_a_config_leaves_the_old_one_in_place(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    inst = client(broker, "installer")
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    before = rb.path.read_bytes()
    rb.rec.refuse_configs = True
    ans = inst.request(f"{BASE}/config/set", json.dumps({"patch": {"tank": {"target_c": 60}}}),
                       reply, b"1").json()
    assert ans["ok"] is False and "miner is restarting" in ans["errors"][0]["reason"]
    assert rb.path.read_bytes() == before
    assert rb.store.config.tank is not None and rb.store.config.tank.target_c == 55
    inst.close()


# -- Home Assistant ----------------------------------------------------------------------------

def test_discovery_is_valid_and_reannounced_when_home_assistant_comes_online(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    ha = client(broker, "homeassistant")
    ha.subscribe(DISCOVERY)
    first = ha.wait_for(DISCOVERY)
    assert first.retain
    assert ha_discovery_problems(DISCOVERY, first.json()) == []
    assert first.json()["availability"][0]["topic"] == f"{BASE}/availability"
    mark = ha.mark()
    ha.publish("homeassistant/status", b"online")
    again = ha.wait_for(DISCOVERY, after=mark)
    assert again.json() == first.json()
    ha.close()


def test_a_retained_discovery_from_an_earlier_run_gets_its_stale_entities_removed(
    tmp_path: Path, broker: brokerkit.Broker,
) -> None:
    # An earlier run announced a miner that is no longer in the config.
    old = RunningBridge(tmp_path / "old", broker)
    with old:
        pass
    doc = old.doc
    doc["miners"] = doc["miners"][:2]
    with RunningBridge(tmp_path / "new", broker) as r:
        r.bridge.stop()
        store = ConfigStore(write_site(tmp_path / "new2", doc))
        b = Bridge(store, r.rec)
        ha = client(broker, "homeassistant")
        ha.subscribe(DISCOVERY)
        ha.wait_for(DISCOVERY, lambda m: "miner_bitaxe-2_power" in m.json()["cmps"])
        mark = ha.mark()
        b.start()
        try:
            removal = ha.wait_for(DISCOVERY, lambda m: m.json()["cmps"].get(
                "miner_bitaxe-2_power") == {"p": "sensor"}, after=mark)
            assert removal.json()["cmps"]["miner_bitaxe-2_state"] == {"p": "sensor"}
            # The clean document that follows the removal (the bridge also announces once
            # on connecting, before it has read the retained one: that earlier clean
            # document does not show the removal is over).
            after_removal = next(i for i, m in enumerate(ha.messages) if m is removal) + 1
            ha.wait_for(DISCOVERY, lambda m: "miner_bitaxe-2_power" not in m.json()["cmps"],
                        after=after_removal)
            retained = retained_snapshot(broker, "homeassistant", USERS["homeassistant"],
                                         DISCOVERY)
            assert "miner_bitaxe-2_power" not in retained[DISCOVERY].json()["cmps"]
        finally:
            b.stop()
        ha.close()


# -- security ----------------------------------------------------------------------------------

def test_acl_denied_publishes_have_no_effect_and_anonymous_is_refused(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    anon = TestClient(broker, None, None).connect(expect_ok=False)
    assert anon.connack is not None and anon.connack.is_failure
    anon.close()
    bad = TestClient(broker, "homeassistant", "wrong").connect(expect_ok=False)
    assert bad.connack is not None and bad.connack.is_failure
    bad.close()

    ha = client(broker, "homeassistant")
    inst = client(broker, "installer")
    inst.subscribe(f"{BASE}/config/result", f"{BASE}/state/#")
    before = rb.path.read_bytes()
    # Home Assistant may not provision; the broker answers "not authorized" and drops it.
    rc = ha.publish(f"{BASE}/config/set", json.dumps({"patch": {"tank": {"target_c": 60}}}))
    assert rc is not None and rc.value == 0x87
    # ... nor fake telemetry; the installer may not send commands.
    rc = ha.publish(f"{BASE}/state/power", b'{"grid_power_w": 99999}', retain=True)
    assert rc is not None and rc.value == 0x87
    rc = inst.publish(f"{BASE}/cmd/pause_all", b'{"paused": true}')
    assert rc is not None and rc.value == 0x87
    # A request that is allowed is answered, which shows the denied ones were not just slow.
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    ans = inst.request(f"{BASE}/config/get", b"", reply, b"ok")
    assert ans.json()["ok"]
    assert inst.on(f"{BASE}/config/result") == []
    assert not [m for m in inst.messages if m.topic == f"{BASE}/state/power"
                and b"99999" in m.payload]
    assert rb.path.read_bytes() == before and rb.rec.commands == []
    # An account cannot read another account's replies: HA may send a command that names
    # the installer's reply topic, but it never gets to see that answer.
    spy = client(broker, "homeassistant")
    own = reply_topic(BASE, "homeassistant")
    spy.subscribe(f"{BASE}/reply/installer/#", own)
    ha.publish(f"{BASE}/cmd/pause_all", b'{"paused": true}',
               response_topic=f"{BASE}/reply/installer/spy", correlation=b"s")
    # The bridge answers in order: once the next answer arrives, the first one was sent.
    ans = spy.request(f"{BASE}/cmd/pause_all", b'{"paused": false}', own, b"after")
    assert ans.json()["ok"]
    assert len(rb.rec.commands) == 2  # both applied (HA may command) ...
    assert spy.on(f"{BASE}/reply/installer/spy") == []  # ... the installer's reply unseen
    for c in (ha, inst, spy):
        c.close()


def test_tls_connection_with_a_test_ca_and_client_certificate(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT, tls=True) as b, \
            RunningBridge(tmp_path / "site", b, tls=True, client_cert=True) as r:
        assert r.bridge.settings.tls and r.bridge.settings.port == b.tls_port
        r.bridge.publish_state(snap(grid_w=-42))
        ha = client(b, "homeassistant", tls=True)
        ha.subscribe(f"{BASE}/state/power")
        ha.wait_for(f"{BASE}/state/power", lambda m: m.json()["grid_power_w"] == -42)
        ha.close()
    assert "New client connected" in b.log_text()


def test_wrong_password_is_logged_and_retried_not_fatal(
    tmp_path: Path, broker: brokerkit.Broker, caplog: pytest.LogCaptureFixture,
) -> None:
    store = ConfigStore(write_site(tmp_path / "s", site_doc(broker), password="wrong"))
    b = Bridge(store, Recorder())
    with caplog.at_level("ERROR", logger="controller.bridge.bridge"):
        b.start()
        brokerkit.wait_until(lambda: "refused the connection" in caplog.text, TIMEOUT_S,
                             "the refusal to be logged")
        b.publish_state(snap())  # still never blocks
        b.stop()
    assert not b.connected


# -- broker restart ----------------------------------------------------------------------------

def test_broker_restart_reconnects_resubscribes_republishes_without_blocking_the_loop(
    broker: brokerkit.Broker, rb: RunningBridge,
) -> None:
    ticks_offline = 0
    ticks = 0
    stop = threading.Event()

    def control_loop() -> None:  # stands in for the service's tick loop (20 ms ticks)
        nonlocal ticks, ticks_offline
        while not stop.is_set():
            rb.bridge.publish_state(snap(grid_w=-float(ticks % 7)))
            ticks += 1
            if not rb.bridge.connected:
                ticks_offline += 1
            time.sleep(0.02)

    loop = threading.Thread(target=control_loop)
    loop.start()
    try:
        brokerkit.wait_until(lambda: ticks > 5, TIMEOUT_S, "the loop to run")
        broker.restart()  # no persistence: every retained message is gone
        brokerkit.wait_until(lambda: rb.bridge.stats.connects >= 2, TIMEOUT_S,
                             "the bridge to reconnect")
        wanted = {f"{BASE}/availability", DISCOVERY, f"{BASE}/state/power",
                  f"{BASE}/state/miners/bitaxe-2"}
        brokerkit.wait_until(
            lambda: wanted <= set(retained_snapshot(broker, "homeassistant",
                                                    USERS["homeassistant"], "#")),
            TIMEOUT_S, "availability, discovery and state to be re-published")
        retained = retained_snapshot(broker, "homeassistant", USERS["homeassistant"], "#")
        assert retained[f"{BASE}/availability"].payload == b"online"
        assert ha_discovery_problems(DISCOVERY, retained[DISCOVERY].json()) == []
        # Re-subscribed: a command is answered again.
        ha = client(broker, "homeassistant")
        reply = reply_topic(BASE, "homeassistant")
        ha.subscribe(reply)
        assert ha.request(f"{BASE}/cmd/pause_all", b'{"paused": true}', reply, b"r").json()["ok"]
        ha.close()
    finally:
        stop.set()
        loop.join()
    assert ticks_offline > 5  # the loop kept ticking while the bridge was disconnected


# -- fuzzing -----------------------------------------------------------------------------------

fuzz_payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
        | st.text(st.characters(categories=["Cs", "Lu"]), max_size=3),  # lone surrogates
        lambda c: st.lists(c, max_size=4) | st.dictionaries(
            st.sampled_from(["mode", "miner", "power_w", "enabled", "paused", "target_c",
                             "cap_w", "config", "patch", "dry_run", "id", "tank", "miners"])
            | st.text(max_size=6), c, max_size=4),
        max_leaves=15)),
)


def test_fuzzing_command_and_config_topics_never_crashes_the_bridge(
    tmp_path: Path, broker: brokerkit.Broker,
) -> None:
    with RunningBridge(tmp_path / "site", broker) as r:
        ha = client(broker, "homeassistant")
        inst = client(broker, "installer")
        ha_reply, inst_reply = reply_topic(BASE, "homeassistant"), reply_topic(BASE, "installer")
        ha.subscribe(ha_reply)
        inst.subscribe(inst_reply)
        counter = iter(range(1_000_000))

        @settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.sampled_from(["cmd/mode", "cmd/miner_power", "cmd/miner_enable",
                                "cmd/pause_all", "cmd/tank_target", "cmd/dr_cap", "cmd/x",
                                "config/set", "config/get", "config/rollback"]),
               fuzz_payloads)
        def one(topic: str, payload: bytes) -> None:
            c, reply = (inst, inst_reply) if topic.startswith("config") else (ha, ha_reply)
            corr = str(next(counter)).encode()
            ans = c.request(f"{BASE}/{topic}", payload, reply, corr).json()
            assert isinstance(ans["ok"], bool)
            if not ans["ok"]:
                assert ans["errors"] and all(e["reason"] for e in ans["errors"])

        one()
        assert r.bridge.connected and r.bridge.stats.errors == []
        load_site(r.path)  # whatever was accepted, the file on disk is a valid site
        ha.close()
        inst.close()
