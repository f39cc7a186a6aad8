"""MQTT test clients for the bridge tests: a paho v5 client that records what it receives.

Talks to the real broker started by brokerkit; nothing here fakes the protocol.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brokerkit
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

TIMEOUT_S = 15.0  # generous: the machine is shared


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    properties: dict[str, Any]
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class TestClient:
    """A recording MQTT v5 client. Every method waits with a generous timeout."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        broker: brokerkit.Broker,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        tls: bool = False,
        client_cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.client_id = client_id or f"test-{uuid.uuid4().hex[:8]}"
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.c.username_pw_set(username, password)
        port = broker.port
        if tls:
            assert broker.pki is not None and broker.tls_port is not None
            cert, key = client_cert if client_cert else (None, None)
            self.c.tls_set(ca_certs=str(broker.pki.ca_file),
                           certfile=str(cert) if cert else None,
                           keyfile=str(key) if key else None,
                           cert_reqs=ssl.CERT_REQUIRED)
            port = broker.tls_port
        self.host, self.port = broker.host, port
        self.messages: list[Received] = []
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self._cv = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish
        self.c.on_connect_fail = self._on_connect_fail
        self.c.on_disconnect = self._on_disconnect
        self.connected = False

    # callbacks (paho network thread)
    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        if not rc.is_failure:
            from controller.bridge.connection import no_delay

            no_delay(c)
        with self._cv:
            self.connack = rc
            self.connected = not rc.is_failure
            self._cv.notify_all()

    def _on_connect_fail(self, c: mqtt.Client, u: Any) -> None:
        with self._cv:
            self._cv.notify_all()

    def _on_disconnect(self, c: mqtt.Client, u: Any, f: Any, rc: ReasonCode, p: Any) -> None:
        with self._cv:
            self.connected = False
            if self.connack is None:
                self.connack = rc
            self._cv.notify_all()

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        props: dict[str, Any] = {}
        if m.properties is not None:
            for name in ("MessageExpiryInterval", "ResponseTopic", "CorrelationData",
                         "ContentType"):
                if hasattr(m.properties, name):
                    props[name] = getattr(m.properties, name)
        with self._cv:
            self.messages.append(Received(m.topic, bytes(m.payload), bool(m.retain), m.qos, props,
                                          time.monotonic()))
            self._cv.notify_all()

    def _on_publish(self, c: mqtt.Client, u: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        with self._cv:
            self.pubacks[mid] = rc
            self._cv.notify_all()

    # API
    def connect(self, expect_ok: bool = True) -> TestClient:
        self.c.connect_async(self.host, self.port, keepalive=30)
        self.c.loop_start()
        with self._cv:
            ok = self._cv.wait_for(lambda: self.connack is not None, TIMEOUT_S)
        assert ok, f"{self.client_id}: no CONNACK from the broker"
        if expect_ok:
            assert self.connected, f"{self.client_id}: connection refused: {self.connack}"
        return self

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def subscribe(self, *topics: str, qos: int = 1) -> list[ReasonCode]:
        """Subscribe and wait for the SUBACK; returns its reason codes (denied ones fail)."""
        done = threading.Event()
        prev = self.c.on_subscribe
        codes: list[ReasonCode] = []

        def on_sub(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
            codes.extend(rcs)
            done.set()

        self.c.on_subscribe = on_sub
        rc, _mid = self.c.subscribe([(t, qos) for t in topics])
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert done.wait(TIMEOUT_S), f"no SUBACK for {topics}"
        self.c.on_subscribe = prev
        return codes

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False,
        response_topic: str | None = None, correlation: bytes | None = None,
    ) -> ReasonCode | None:
        """Publish and wait for the PUBACK (qos 1); returns its reason code."""
        props = None
        if response_topic is not None or correlation is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if response_topic is not None:
                props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = correlation
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos == 0:
            return None
        with self._cv:
            ok = self._cv.wait_for(lambda: info.mid in self.pubacks, TIMEOUT_S)
        assert ok, f"no PUBACK for {topic}"
        return self.pubacks[info.mid]

    def wait_for(
        self, topic: str, where: Callable[[Received], bool] = lambda m: True,
        timeout_s: float = TIMEOUT_S, after: int = 0,
    ) -> Received:
        """The first message on `topic` (from index `after` on) that satisfies `where`."""
        def find() -> Received | None:
            for m in self.messages[after:]:
                if m.topic == topic and where(m):
                    return m
            return None

        with self._cv:
            self._cv.wait_for(lambda: find() is not None, timeout_s)
            found = find()
        if found is None:
            seen = sorted({m.topic for m in self.messages})
            raise AssertionError(f"no matching message on {topic} within {timeout_s} s; "
                                 f"topics seen: {seen}")
        return found

    def on(self, topic: str) -> list[Received]:
        with self._cv:
            return [m for m in self.messages if m.topic == topic]

    def mark(self) -> int:
        with self._cv:
            return len(self.messages)

    def request(
        self, topic: str, payload: bytes | str, reply_topic: str, correlation: bytes,
        timeout_s: float = TIMEOUT_S,
    ) -> Received:
        """Publish with response topic + correlation data and wait for the matching answer."""
        mark = self.mark()
        self.publish(topic, payload, response_topic=reply_topic, correlation=correlation)
        return self.wait_for(
            reply_topic, lambda m: m.properties.get("CorrelationData") == correlation,
            timeout_s, after=mark,
        )


def reply_topic(base: str, user: str) -> str:
    """A fresh response topic under the user's reply branch (the ACL lets each account
    read only its own): one per request, so answers never mix."""
    return f"{base}/reply/{user}/{uuid.uuid4().hex[:8]}"


def installer_cli(argv: list[str]) -> int:
    """`hearth installer ...` through its own argparse wiring, in this process (InputError
    propagates, for the test to check, where `hearth`'s main would print it and exit 2)."""
    import argparse

    from controller.bridge.cli import register

    parser = argparse.ArgumentParser(prog="hearth")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


def retained_snapshot(
    broker: brokerkit.Broker, username: str, password: str, topic_filter: str,
) -> dict[str, Received]:
    """What a new subscriber gets as retained messages on `topic_filter` right now.

    The broker queues retained messages right after the SUBACK; a second SUBSCRIBE on the
    same connection is answered after them (QoS 0, so nothing waits in an inflight window),
    so its SUBACK is the barrier - allowed by the ACL or not. No sleeping.
    """
    cl = TestClient(broker, username, password).connect()
    try:
        cl.subscribe(topic_filter, qos=0)
        cl.subscribe("brokerkit/barrier", qos=0)
        return {m.topic: m for m in cl.messages if m.retain}
    finally:
        cl.close()


# -- the site, the accounts, the fake service ------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
ACL_TEXT = (REPO / "deploy" / "mosquitto" / "acl").read_text()
USERS = {"hearth": "pw-hearth", "installer": "pw-installer", "homeassistant": "pw-ha"}
SITE = "demo-house"  # site.id of hil/sites/house-10kwp.toml
S9_SECRET = "s9-driver-secret"


def site_doc(broker: brokerkit.Broker, *, tls: bool = False, client_cert: bool = False,
             **mqtt_fields: Any) -> dict[str, Any]:
    """The house example with an [mqtt] section for this broker and one driver secret."""
    import simkit

    d = simkit.site_dict()
    d["miners"][0]["driver"]["password"] = S9_SECRET
    section: dict[str, Any] = {
        "host": "127.0.0.1", "port": broker.port, "username": "hearth",
        "password_file": "hearth.pw", "telemetry_interval_s": 0.2,
        "telemetry_refresh_s": 1.0, "state_expiry_s": 30, "reconnect_min_s": 1,
        "reconnect_max_s": 2, "keepalive_s": 5,
    }
    if tls:
        assert broker.pki is not None and broker.tls_port is not None
        section["port"] = broker.tls_port
        section["tls"] = {"ca_file": str(broker.pki.ca_file)}
        if client_cert:
            cert, key = broker.pki.client_cert("hearth")
            section["tls"].update(cert_file=str(cert), key_file=str(key))
    section.update(mqtt_fields)
    d["mqtt"] = section
    return d


def write_site(directory: Path, doc: dict[str, Any], password: str = USERS["hearth"]) -> Path:
    from controller.bridge import tomldoc

    directory.mkdir(parents=True, exist_ok=True)
    pw = directory / "hearth.pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    path = directory / "site.toml"
    path.write_text(tomldoc.dumps(doc))
    return path


class Recorder:
    """A stand-in for the service (which does not exist yet): records what it was given.

    `refuse_commands` / `refuse_configs` make it refuse, to test that path.
    """

    def __init__(self) -> None:
        self.commands: list[Any] = []
        self.configs: list[Any] = []
        self.refuse_commands = False
        self.refuse_configs = False
        self._lock = threading.Lock()

    def __call__(self, command: Any) -> None:
        from controller.bridge import CommandRefused
        from controller.errors import Problem

        if self.refuse_commands:
            raise CommandRefused([Problem("", "the controller is shutting down")])
        with self._lock:
            self.commands.append(command)

    def on_config(self, cfg: Any) -> list[str]:
        if self.refuse_configs:
            raise RuntimeError("cannot apply while a miner is restarting")
        with self._lock:
            self.configs.append(cfg)
        return []


# -- Home Assistant's documented discovery rules ----------------------------------------------

HA_RULES = json.loads((Path(__file__).parent / "data" / "ha_discovery_rules.json").read_text())


def ha_discovery_problems(topic: str, payload: dict[str, Any]) -> list[str]:
    """What HA would reject (or not use) in a device discovery message, per its docs."""
    import re

    r = HA_RULES["device_discovery"]
    problems: list[str] = []
    parts = topic.split("/")
    if len(parts) != 4 or parts[1] != "device" or parts[3] != "config":
        problems.append(f"topic {topic} is not <prefix>/device/<object_id>/config")
    elif not re.match(r["id_pattern"], parts[2]):
        problems.append(f"object id {parts[2]!r} has characters HA does not allow")
    for key in r["root_required"]:
        if key not in payload:
            problems.append(f"root: missing {key}")
    dev = payload.get("dev", {})
    if not any(dev.get(k) for k in r["device_required_any"]):
        problems.append("dev: needs identifiers or connections")
    for key in r["origin_required"]:
        if not payload.get("o", {}).get(key):
            problems.append(f"o: missing {key}")
    unique_ids: set[str] = set()
    for cid, comp in payload.get("cmps", {}).items():
        where = f"cmps.{cid}"
        if not re.match(r["id_pattern"], cid):
            problems.append(f"{where}: component id has characters HA does not allow")
        if set(comp) == {"p"}:
            continue  # a removal stub
        for key in r["component_required"]:
            if key not in comp:
                problems.append(f"{where}: missing {key}")
        platform = comp.get("p")
        if platform not in HA_RULES["platforms"]:
            problems.append(f"{where}: platform {platform!r} not checked by this test")
            continue
        for key in HA_RULES["platforms"][platform]["required"]:
            if key not in comp and key not in payload:
                problems.append(f"{where}: {platform} requires {key}")
        uid = comp.get("unique_id")
        if uid in unique_ids:
            problems.append(f"{where}: duplicate unique_id {uid}")
        unique_ids.add(uid)
        dc, sc, unit = comp.get("device_class"), comp.get("state_class"), \
            comp.get("unit_of_measurement")
        if sc is not None and sc not in HA_RULES["state_classes"]:
            problems.append(f"{where}: unknown state_class {sc!r}")
        if platform == "sensor" and dc is not None and sc is not None:
            allowed = HA_RULES["device_class_state_classes"].get(dc)
            if allowed is not None and sc not in allowed:
                problems.append(f"{where}: state_class {sc} not allowed with {dc} ({allowed})")
        if dc in HA_RULES["device_class_units"] and unit not in HA_RULES["device_class_units"][dc]:
            problems.append(f"{where}: unit {unit!r} not valid for device_class {dc}")
        if "last_reset_value_template" in comp and sc != "total":
            problems.append(f"{where}: last_reset_value_template needs state_class total")
        if dc == "monetary" and not unit:
            problems.append(f"{where}: monetary needs a currency unit")
        if "expire_after" in comp and not (isinstance(comp["expire_after"], int)
                                           and comp["expire_after"] > 0):
            problems.append(f"{where}: expire_after must be a positive int")
    return problems


class RunningBridge:
    """A Bridge on a site file written for `broker`, with a Recorder as the service."""

    def __init__(self, directory: Path, broker: brokerkit.Broker, **site_kw: Any) -> None:
        from controller.bridge import Bridge, ConfigStore

        self.doc = site_doc(broker, **site_kw)
        self.path = write_site(directory, self.doc)
        self.store = ConfigStore(self.path)
        self.rec = Recorder()
        self.bridge = Bridge(self.store, self.rec, self.rec.on_config)

    def __enter__(self) -> RunningBridge:
        self.bridge.start()
        assert self.bridge.wait_connected(TIMEOUT_S), "bridge did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        self.bridge.stop()


def client(broker: brokerkit.Broker, user: str, **kw: Any) -> TestClient:
    return TestClient(broker, user, USERS[user], **kw).connect()
