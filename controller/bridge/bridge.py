"""The MQTT bridge: telemetry out, commands and installer provisioning in, HA discovery.

Threads, so the control loop never waits on the network:
- paho's network thread (loop_start): connects, reconnects with exponential back-off,
  resubscribes and re-announces on every connect, and queues incoming requests;
- a publisher thread: takes the latest snapshot handed over by `publish_state()` (a slot,
  not a queue: only the newest state matters) and publishes what the rate limit allows;
- a worker thread: validates and answers commands and config requests one at a time, and
  calls the service's callbacks (`on_command`, `on_config`).

`publish_state()` only stores a reference and sets an event; it never blocks on I/O.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.bridge import discovery
from controller.bridge.commands import CommandRefused, CommandSink, describe, parse_command
from controller.bridge.connection import (
    BrokerSettings,
    make_client,
    no_delay,
    publish_properties,
)
from controller.bridge.messages import (
    decode_json,
    encode,
    error_reply,
    ok_reply,
    request_id_of,
)
from controller.bridge.provisioning import RESTART_SECTIONS, ConfigStore, Proposal
from controller.bridge.telemetry import RateLimiter, StateSnapshot, state_payloads
from controller.bridge.topics import Topics
from controller.config.models import SiteConfig
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)

# Called with a new, validated config after it was written. Returns the sections the
# service could not apply without a restart. Raising refuses it: the file is restored.
ConfigApplier = Callable[[SiteConfig], Sequence[str]]

_CONFIG_OPS = ("set", "get", "rollback")
_SET_KEYS = {"config", "patch", "dry_run", "if_version", "id"}


@dataclass
class BridgeStats:
    """Counters for tests, logs and the bench."""

    connects: int = 0
    state_published: int = 0
    discovery_published: int = 0
    answered: int = 0
    refused: int = 0
    dropped_busy: int = 0
    errors: list[str] = field(default_factory=list)


MAX_TOPIC_BYTES = 65535  # MQTT: a topic is a UTF-8 string of at most 65535 bytes


def response_topic_problem(topic: str | None, reply_prefix: str) -> str | None:
    """Why a request's MQTT v5 response topic cannot be answered on, or None. A topic
    filter character (+, #), a NUL or an over-long name would make the answer's publish
    fail after the request had been applied."""
    if topic is None:
        return None
    shown = repr(topic[:200])
    if not topic.startswith(reply_prefix):
        return f"must start with {reply_prefix} (got {shown})"
    if "+" in topic or "#" in topic:
        return f"must be a topic name, not a filter: no '+' or '#' (got {shown})"
    if "\x00" in topic:
        return "must not contain a NUL character"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > MAX_TOPIC_BYTES:
        return f"too long: {size} bytes, MQTT allows {MAX_TOPIC_BYTES}"
    if topic == reply_prefix:
        return f"needs a name after {reply_prefix}"
    return None


@dataclass(frozen=True)
class _Request:
    topic: str
    payload: bytes
    response_topic: str | None
    correlation: bytes | None


class Bridge:
    """One site's MQTT bridge. `start()`, then `publish_state()` every tick; `stop()`."""

    def __init__(
        self,
        store: ConfigStore,
        on_command: CommandSink,
        on_config: ConfigApplier | None = None,
        *,
        settings: BrokerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_queue_size: int = 64,
    ) -> None:
        cfg = store.config
        if cfg.mqtt is None:
            raise InputError(str(store.path), [Problem("mqtt", "the site has no [mqtt] "
                                                       "section; the bridge needs one")])
        self.store = store
        self.section = cfg.mqtt
        self.settings = settings or BrokerSettings.from_section(
            cfg.mqtt, store.path.parent, cfg.site.id)
        self.topics = Topics(cfg.site.id, cfg.mqtt.discovery_prefix)
        self._cfg = cfg
        self._on_command = on_command
        self._on_config = on_config
        self._clock = clock
        self.stats = BridgeStats()
        self._limiter = RateLimiter(cfg.mqtt.telemetry_interval_s, cfg.mqtt.telemetry_refresh_s)
        self._snapshot: StateSnapshot | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._sub_mid: int | None = None  # the SUBSCRIBE whose SUBACK means connected
        self._requests: queue.Queue[_Request | None] = queue.Queue(request_queue_size)
        self._announced: dict[str, str] = {}  # component id -> platform, as HA knows them
        self._state_topics: set[str] = set()
        self._pub_lock = threading.Lock()  # limiter and topic bookkeeping
        self._disc_lock = threading.Lock()  # what HA was told (network and worker threads)
        self._client = make_client(self.settings)
        self._client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(self.section.reconnect_min_s,
                                         self.section.reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._threads: list[threading.Thread] = []

    # -- the service's side ------------------------------------------------------------------

    @property
    def config(self) -> SiteConfig:
        return self._cfg

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish_state(self, snapshot: StateSnapshot) -> None:
        """Hand over the newest state. Returns at once; never touches the network."""
        self._snapshot = snapshot
        self._wake.set()

    def start(self) -> None:
        s = self.settings
        self._threads = [
            threading.Thread(target=self._publisher, name="hearth-mqtt-publish", daemon=True),
            threading.Thread(target=self._worker, name="hearth-mqtt-requests", daemon=True),
        ]
        for t in self._threads:
            t.start()
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=True)
        self._client.loop_start()
        log.info("MQTT bridge for site %s: connecting to %s:%d as %s%s", self._cfg.site.id,
                 s.host, s.port, s.username, " over TLS" if s.tls else "")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish `offline` (a clean stop is not a crash, so no Last Will), disconnect."""
        self._stopping.set()
        self._wake.set()
        with contextlib.suppress(queue.Full):  # a busy worker sees _stopping after its item
            self._requests.put_nowait(None)
        for t in self._threads:
            t.join(timeout_s)
        if self.connected:
            info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as err:
                log.warning("could not publish offline before stopping: %s", err)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        log.info("MQTT bridge stopped")

    # -- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                    props: Any) -> None:
        try:
            self._connected_now(client, rc)
        except Exception as err:  # never let it end paho's network thread
            log.exception("internal error after connecting")
            self.stats.errors.append(f"on_connect: {err}")

    def _connected_now(self, client: mqtt.Client, rc: ReasonCode) -> None:
        if rc.is_failure:
            log.error("broker %s:%d refused the connection: %s", self.settings.host,
                      self.settings.port, rc.getName())
            return
        self.stats.connects += 1
        no_delay(client)
        t = self.topics
        cfg = self._cfg
        # retainAsPublished: a request published with retain=1 is seen as such (and refused).
        req_opts = SubscribeOptions(qos=1, retainAsPublished=True)
        subs: list[tuple[str, SubscribeOptions]] = [
            (t.cmd_filter, req_opts),
            *[(t.config(op), req_opts) for op in _CONFIG_OPS],
        ]
        if cfg.mqtt is not None and cfg.mqtt.discovery:
            subs.append((t.ha_status, SubscribeOptions(qos=1)))
            # Our own retained discovery from an earlier run tells which entities HA has.
            subs.append((t.discovery_topic(discovery.device_id(cfg)), SubscribeOptions(qos=1)))
        _rc, self._sub_mid = client.subscribe(subs)
        client.publish(t.availability, "online", qos=1, retain=True)
        self._announce()
        with self._pub_lock:
            self._limiter.forget()
        # Connected (wait_connected) once the broker acknowledged the subscriptions: before
        # the SUBACK a request published by another client could reach the broker first
        # and go nowhere (seen in a test on a loaded machine: no answer within 15 s).

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any,
                      props: Any) -> None:
        if mid != self._sub_mid:
            return
        self._connected.set()
        self._wake.set()
        log.info("MQTT bridge connected (%d time(s)), subscribed and announced",
                 self.stats.connects)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                       props: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stopping.is_set():
            log.warning("MQTT connection lost (%s); reconnecting with back-off up to %d s",
                        rc.getName(), self.section.reconnect_max_s)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # An exception escaping a paho callback would end the network thread: contain it.
        try:
            self._route(msg)
        except Exception as err:
            log.exception("internal error on an incoming message")
            self.stats.errors.append(f"on_message: {err}")

    def _route(self, msg: mqtt.MQTTMessage) -> None:
        t = self.topics
        if msg.topic == t.ha_status:
            if msg.payload == b"online":
                log.info("Home Assistant is online: re-announcing")
                self._announce()
                with self._pub_lock:
                    self._limiter.forget()
                self._wake.set()
            return
        if msg.topic.startswith(t.discovery_prefix + "/device/"):
            if msg.retain:
                self._reconcile_retained_discovery(bytes(msg.payload))
            return
        if msg.retain:
            if msg.payload:
                # A retained request would be re-applied on every reconnect: refuse it and
                # delete it from the broker (an empty retained message clears it).
                self._refuse_retained(msg)
            return
        props = msg.properties
        rt = getattr(props, "ResponseTopic", None) if props is not None else None
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        req = _Request(msg.topic, bytes(msg.payload), rt, corr)
        try:
            self._requests.put_nowait(req)
        except queue.Full:
            self.stats.dropped_busy += 1
            log.warning("refused %s: request queue full", msg.topic)
            dest = rt if rt is not None and response_topic_problem(rt, t.reply_prefix) is None \
                else self._fallback_topic(req.topic)
            self._answer(req, dest, {
                "ok": False, "errors": [{"field": "", "reason": "busy: too many requests at "
                                         "once; try again"}]})

    def _refuse_retained(self, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        req = _Request(msg.topic, b"", None, corr)
        kind = "op" if msg.topic.startswith(self.topics.base + "/config/") else "command"
        name = msg.topic.rsplit("/", 1)[-1]
        self._client.publish(msg.topic, b"", qos=1, retain=True)
        self._refuse(req, self._fallback_topic(msg.topic), kind, name, None, [Problem(
            "retain", "requests must not be retained (it would be re-applied on every "
            "reconnect); it was deleted, send it again without retain")])

    # -- discovery -----------------------------------------------------------------------------

    def _discovery_payload(self, removed: dict[str, str] | None = None) -> dict[str, Any]:
        assert self._cfg.mqtt is not None
        return discovery.device_payload(self._cfg, self.topics, self._cfg.mqtt.state_expiry_s,
                                        removed)

    def _announce(self, previously: dict[str, str] | None = None) -> None:
        """Publish discovery; components HA knows but we no longer have are removed first."""
        cfg = self._cfg
        topic = self.topics.discovery_topic(discovery.device_id(cfg))
        with self._disc_lock:
            if cfg.mqtt is None or not cfg.mqtt.discovery:
                if self._announced:  # switched off: remove the device from HA
                    self._client.publish(topic, b"", qos=1, retain=True)
                    self._announced = {}
                return
            current = discovery.announced_platforms(self._discovery_payload())
            known = dict(self._announced if previously is None else previously)
            removed = {k: p for k, p in known.items() if k not in current}
            if removed:
                log.info("removing Home Assistant entities: %s", ", ".join(sorted(removed)))
                self._client.publish(topic, encode(self._discovery_payload(removed)), qos=1,
                                     retain=True)
            self._client.publish(topic, encode(self._discovery_payload()), qos=1, retain=True)
            self._announced = current
            self.stats.discovery_published += 1

    def _reconcile_retained_discovery(self, payload: bytes) -> None:
        try:
            old = decode_json(payload, 1 << 20, "discovery", empty_ok=True)
        except InputError:
            return
        old_platforms = discovery.announced_platforms(old)
        with self._disc_lock:
            extra = set(old_platforms) - set(self._announced)
            known = {**old_platforms, **self._announced}
        if extra:
            self._announce(previously=known)

    # -- telemetry (publisher thread) ----------------------------------------------------------

    def _publisher(self) -> None:
        timeout = 0.5
        while not self._stopping.is_set():
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stopping.is_set():
                return
            if not self._connected.is_set() or self._snapshot is None:
                timeout = 0.5
                continue
            try:
                timeout = self._publish_due(self._snapshot)
            except Exception as err:  # never let one bad snapshot stop telemetry
                log.exception("telemetry publish failed")
                self.stats.errors.append(f"publish: {err}")
                timeout = 1.0

    def _publish_due(self, snap: StateSnapshot) -> float:
        cfg = self._cfg
        assert cfg.mqtt is not None
        props = publish_properties()
        props.MessageExpiryInterval = cfg.mqtt.state_expiry_s
        now = self._clock()
        with self._pub_lock:
            payloads = state_payloads(snap, cfg)
            for suffix, body in payloads.items():
                topic = self.topics.state(suffix)
                data = encode(body)
                if not self._limiter.due(topic, data, now):
                    continue
                info = self._client.publish(topic, data, qos=0, retain=True, properties=props)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    self._limiter.sent(topic, data, now)
                    self._state_topics.add(topic)
                    self.stats.state_published += 1
            wait = self._limiter.next_due_in(now)
        return min(max(wait, 0.05), cfg.mqtt.telemetry_interval_s)

    def _clear_stale_state_topics(self) -> None:
        """Delete the retained state of things no longer in the config (removed miners)."""
        if self._snapshot is None:
            wanted = {self.topics.state(s) for s in state_payloads(StateSnapshot(), self._cfg)}
        else:
            wanted = {self.topics.state(s) for s in state_payloads(self._snapshot, self._cfg)}
        with self._pub_lock:
            for topic in sorted(self._state_topics - wanted):
                self._client.publish(topic, b"", qos=1, retain=True)
                self._state_topics.discard(topic)
                self._limiter.forget(topic)
            self._limiter.forget()
        self._wake.set()

    # -- requests (worker thread) --------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            req = self._requests.get()
            if req is None or self._stopping.is_set():
                return
            try:
                self._handle(req)
            except Exception as err:  # a bug must not kill the worker; answer and log it
                log.exception("internal error handling %s", req.topic)
                self.stats.errors.append(f"{req.topic}: {err}")
                self._answer(req, self._fallback_topic(req.topic), {
                    "ok": False, "errors": [{"field": "", "reason": f"internal error: {err}"}]})

    def _fallback_topic(self, topic: str) -> str:
        t = self.topics
        if topic.startswith(t.base + "/config/"):
            return t.config_result
        name = topic.rsplit("/", 1)[-1]
        return t.cmd_result(name)

    def _handle(self, req: _Request) -> None:
        t = self.topics
        is_config = req.topic.startswith(t.base + "/config/")
        kind = "op" if is_config else "command"
        name = req.topic.rsplit("/", 1)[-1]
        fallback = self._fallback_topic(req.topic)
        why = response_topic_problem(req.response_topic, t.reply_prefix)
        if why is not None:  # checked before anything is applied: an answer must be possible
            self._refuse(req, fallback, kind, name, None, [Problem("response_topic", why)])
            return
        dest = req.response_topic or fallback
        limit = self.section.max_config_bytes if is_config else self.section.max_command_bytes
        rid: str | None = None
        try:
            doc = decode_json(req.payload, limit, req.topic, empty_ok=is_config)
            rid = request_id_of(doc)
            if is_config:
                body = self._config_op(name, doc, rid)
            else:
                cmd = parse_command(name, doc, self._cfg)
                self._on_command(cmd)
                log.info("command %s accepted: %s", name, describe(cmd))
                body = ok_reply("command", name, rid, applied=describe(cmd))
        except InputError as err:
            self._refuse(req, dest, kind, name, rid, err.problems)
            return
        except CommandRefused as err:
            self._refuse(req, dest, kind, name, rid, err.problems)
            return
        self.stats.answered += 1
        self._answer(req, dest, body)

    def _refuse(self, req: _Request, dest: str, kind: str, name: str, rid: str | None,
                problems: Sequence[Problem]) -> None:
        self.stats.refused += 1
        text = "; ".join(str(p) for p in problems)
        # Hostile input may hold lone surrogates; the log line must stay encodable.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        log.warning("refused %s: %s", req.topic, text)
        self._answer(req, dest, error_reply(kind, name, rid, problems))

    def _answer(self, req: _Request, dest: str, body: dict[str, Any]) -> None:
        props = publish_properties()
        props.ContentType = "application/json"
        if req.correlation is not None:
            props.CorrelationData = req.correlation
        self._client.publish(dest, encode(body), qos=1, retain=False, properties=props)

    # -- provisioning -------------------------------------------------------------------------

    def _config_op(self, op: str, doc: Any, rid: str | None) -> dict[str, Any]:
        store = self.store
        source = f"config/{op}"
        if op == "get":
            return ok_reply("op", "get", rid, version=store.version, config=store.redacted())
        if not isinstance(doc, dict):
            raise InputError(source, [Problem("payload", "must be a JSON object")])
        if op == "rollback":
            unknown = sorted(set(doc) - {"id"})
            if unknown:
                raise InputError(source, [Problem(k, "unknown key (typo?)") for k in unknown])
            return self._apply(store.rollback(source), "rollback", rid)
        unknown = sorted(set(doc) - _SET_KEYS)
        problems = [Problem(k, "unknown key (typo?); expected config, patch, dry_run, "
                               "if_version, id") for k in unknown]
        dry_run = doc.get("dry_run", False)
        if not isinstance(dry_run, bool):
            problems.append(Problem("dry_run", "must be true or false"))
        if_version = doc.get("if_version")
        if if_version is not None and if_version != store.version:
            problems.append(Problem("if_version", f"the config changed meanwhile: it is now "
                                                  f"version {store.version}"))
        if problems:
            raise InputError(source, problems)
        proposal = store.propose(document=doc.get("config"), patch=doc.get("patch"),
                                 source=source)
        if self._cfg.mqtt is not None and proposal.config.mqtt is None:
            raise InputError(source, [Problem("mqtt", "cannot be removed over MQTT: the "
                                              "controller would be unreachable after a "
                                              "restart")])
        if dry_run:
            return ok_reply("op", "set", rid, dry_run=True, changed=proposal.changed,
                            version=store.version)
        return self._apply(proposal, "set", rid)

    def _apply(self, proposal: Proposal, op: str, rid: str | None) -> dict[str, Any]:
        store = self.store
        old = (store.raw, store.config, store.current_text())
        version = store.commit(proposal)
        restart: set[str] = set()
        if self._on_config is not None:
            try:
                restart.update(self._on_config(proposal.config))
            except Exception as err:
                store.restore(*old)
                problems = (err.problems if isinstance(err, InputError | CommandRefused)
                            else [Problem("", f"the controller could not apply it: {err}")])
                log.error("config %s refused by the service, file restored: %s", op, err)
                raise InputError(f"config/{op}", problems) from None
        restart.update(RESTART_SECTIONS & set(proposal.changed))
        old_cfg, self._cfg = self._cfg, proposal.config
        if (old_cfg.mqtt is not None and proposal.config.mqtt is not None
                and old_cfg.mqtt.discovery_prefix != proposal.config.mqtt.discovery_prefix):
            restart.add("mqtt")
        self._announce()
        self._clear_stale_state_topics()
        return ok_reply("op", op, rid, version=version, changed=proposal.changed,
                        restart_required=sorted(restart))
