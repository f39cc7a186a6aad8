"""`hearth installer push|get|rollback`: commission a site over MQTT from a laptop.

Each sub-command is one MQTT v5 request on `hearth/<site>/config/<op>` with a response
topic under `hearth/<site>/reply/<username>/<client id>` and random correlation data, and
waits for the answer. Exit codes: 0 accepted, 2 refused (every error printed with its
path, like `hearth config check`), 1 no answer (broker unreachable, refused login, timeout).

The password comes from --password-file or $HEARTH_MQTT_PASSWORD, never the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from controller.bridge import tomldoc
from controller.bridge.connection import (
    BrokerSettings,
    make_client,
    no_delay,
    publish_properties,
    read_password,
)
from controller.bridge.messages import decode_json, encode
from controller.bridge.topics import Topics
from controller.errors import InputError, Problem


class NoAnswer(Exception):
    """The request could not be made or was not answered in time."""


def _broker(text: str) -> tuple[str, int | None]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or "]" in port:
        return text, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}")
    return host.strip("[]"), int(port)


def settings_from_args(args: argparse.Namespace) -> BrokerSettings:
    problems: list[Problem] = []
    username = args.username or os.environ.get("HEARTH_MQTT_USERNAME")
    if not username:
        problems.append(Problem("--username", "required (or set HEARTH_MQTT_USERNAME)"))
    if args.password_file:
        password = read_password(Path(args.password_file), "--password-file", problems)
    else:
        password = os.environ.get("HEARTH_MQTT_PASSWORD", "")
        if not password:
            problems.append(Problem("--password-file", "required (or set "
                                    "HEARTH_MQTT_PASSWORD); anonymous access is refused"))
    tls = bool(args.tls or args.ca_file or args.cert_file)
    for opt in ("ca_file", "cert_file", "key_file"):
        value = getattr(args, opt)
        if value and not Path(value).is_file():
            problems.append(Problem("--" + opt.replace("_", "-"), f"file not found: {value}"))
    if bool(args.cert_file) != bool(args.key_file):
        problems.append(Problem("--cert-file", "--cert-file and --key-file go together"))
    if problems:
        raise InputError("hearth installer", problems)
    host, port = args.broker
    return BrokerSettings(
        host=host, port=port or (8883 if tls else 1883), username=username or "",
        password=password, client_id=f"hearth-installer-{secrets.token_hex(4)}",
        keepalive_s=30, tls=tls,
        ca_file=Path(args.ca_file) if args.ca_file else None,
        cert_file=Path(args.cert_file) if args.cert_file else None,
        key_file=Path(args.key_file) if args.key_file else None,
    )


def request(settings: BrokerSettings, site_id: str, op: str, body: dict[str, Any],
            timeout_s: float) -> dict[str, Any]:
    """One request/response round trip; returns the decoded answer."""
    topics = Topics(site_id)
    reply_topic = topics.reply(settings.username, settings.client_id)
    correlation = secrets.token_bytes(16)
    answer: dict[str, Any] = {}
    failure: list[str] = []
    too_large: list[Problem] = []
    done = threading.Event()
    subscribed = threading.Event()
    payload = encode(body)
    size = publish_packet_bytes(topics.config(op), reply_topic, len(correlation), len(payload))

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: ReasonCode, p: Any) -> None:
        if rc.is_failure:
            failure.append(f"the broker refused the login: {rc.getName()}")
            done.set()
            return
        # The broker's own limit (MQTT v5 CONNACK): a bigger packet would be dropped and
        # resent until the timeout; say so now instead.
        broker_max = getattr(p, "MaximumPacketSize", None) if p is not None else None
        if isinstance(broker_max, int) and size > broker_max:
            too_large.append(Problem("payload", f"too large for the broker: the request is "
                                     f"{size} bytes, {settings.host}:{settings.port} accepts "
                                     f"at most {broker_max} (its max_packet_size)"))
            done.set()
            return
        no_delay(c)
        c.subscribe(reply_topic, qos=1)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode], p: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            failure.append(f"not allowed to read {reply_topic} (check the broker ACL)")
            done.set()
            return
        props = publish_properties()
        props.ResponseTopic = reply_topic
        props.CorrelationData = correlation
        c.publish(topics.config(op), payload, qos=1, properties=props)
        subscribed.set()

    def on_publish(c: mqtt.Client, u: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        if rc.is_failure:
            failure.append(f"the broker refused the request on {topics.config(op)}: "
                           f"{rc.getName()} (check the broker ACL)")
            done.set()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        corr = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
        if corr != correlation:
            return
        try:
            doc = decode_json(bytes(msg.payload), 64 << 20, reply_topic)
        except InputError as err:
            failure.append(f"unreadable answer: {err.render()}")
        else:
            if isinstance(doc, dict):
                answer.update(doc)
            else:
                failure.append("unreadable answer: not a JSON object")
        done.set()

    client = make_client(settings)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    except OSError as err:
        raise NoAnswer(f"cannot reach the broker {settings.host}:{settings.port}: {err}") \
            from None
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            where = "the controller" if subscribed.is_set() else "the broker"
            raise NoAnswer(f"no answer from {where} within {timeout_s:g} s (is site "
                           f"{site_id!r} online? see hearth/{site_id}/availability)")
    finally:
        client.disconnect()
        client.loop_stop()
    if too_large:
        raise InputError(f"hearth/{site_id}/config/{op}", too_large)
    if failure:
        raise NoAnswer(failure[0])
    return answer


def _varint_bytes(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16_384 else 3 if n < 2_097_152 else 4


def publish_packet_bytes(topic: str, response_topic: str, correlation_bytes: int,
                         payload_bytes: int) -> int:
    """The size of our MQTT v5 PUBLISH (QoS 1, response topic and correlation data)."""
    props = (3 + len(response_topic.encode())) + (3 + correlation_bytes)
    rest = 2 + len(topic.encode()) + 2 + _varint_bytes(props) + props + payload_bytes
    return 1 + _varint_bytes(rest) + rest


def _load_document(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(str(path), [Problem("", f"cannot read: {err.strerror}")]) from None
    try:
        if path.suffix == ".json":
            doc = decode_json(raw, 64 << 20, str(path))
        else:
            doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(str(path), [Problem("", f"not a TOML file: {err}")]) from None
    if not isinstance(doc, dict):
        raise InputError(str(path), [Problem("", "must hold an object")])
    return doc


def _finish(args: argparse.Namespace, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The accepted answer; None (reported on stderr) if there was none."""
    try:
        answer = request(settings_from_args(args), args.site, op, body, args.timeout)
    except NoAnswer as err:
        print(f"hearth installer {op}: {err}", file=sys.stderr)
        return None
    if not answer.get("ok"):
        errors = answer.get("errors") or [{"field": "", "reason": "refused without a reason"}]
        raise InputError(f"hearth/{args.site}/config/{op}", [
            Problem(str(e.get("field", "")), str(e.get("reason", ""))) for e in errors
            if isinstance(e, dict)])
    return answer


def _push(args: argparse.Namespace) -> int:
    doc = _load_document(Path(args.file))
    body: dict[str, Any] = {"patch" if args.patch else "config": doc}
    if args.dry_run:
        body["dry_run"] = True
    if args.if_version:
        body["if_version"] = args.if_version
    size = len(encode(body))
    if size > args.max_bytes:  # the controller would refuse it unread: say so first
        raise InputError(args.file, [Problem("", f"too large: the request is {size} bytes, "
                                             f"the controller accepts at most {args.max_bytes}"
                                             " (its mqtt.max_config_bytes; --max-bytes if it "
                                             "was raised)")])
    ans = _finish(args, "set", body)
    if ans is None:
        return 1
    what = "valid (dry run, nothing written)" if ans.get("dry_run") else "applied"
    print(f"site {args.site}: config {what}; version {ans.get('version')}; changed: "
          f"{', '.join(ans.get('changed') or []) or 'nothing'}")
    if ans.get("restart_required"):
        print(f"restart the controller to apply: {', '.join(ans['restart_required'])}")
    return 0


def _get(args: argparse.Namespace) -> int:
    ans = _finish(args, "get", {})
    if ans is None:
        return 1
    config = ans.get("config", {})
    text = (json.dumps(config, indent=2) + "\n" if args.format == "json"
            else tomldoc.dumps(config))
    if args.output:
        Path(args.output).write_text(text)
        print(f"site {args.site}: config version {ans.get('version')} written to "
              f"{args.output} (secrets shown as <redacted>; pushing it back keeps them)")
    else:
        sys.stdout.write(text)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    ans = _finish(args, "rollback", {})
    if ans is None:
        return 1
    print(f"site {args.site}: rolled back to version {ans.get('version')}; changed: "
          f"{', '.join(ans.get('changed') or []) or 'nothing'}")
    if ans.get("restart_required"):
        print(f"restart the controller to apply: {', '.join(ans['restart_required'])}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, type=_broker, help="HOST or HOST:PORT")
    p.add_argument("--site", required=True, help="site id (hearth/<site>/...)")
    p.add_argument("--username", help="broker account (default $HEARTH_MQTT_USERNAME)")
    p.add_argument("--password-file", help="file whose first line is the password "
                                           "(default $HEARTH_MQTT_PASSWORD)")
    p.add_argument("--tls", action="store_true", help="TLS with the system CAs")
    p.add_argument("--ca-file", help="CA certificate of the broker (implies --tls)")
    p.add_argument("--cert-file", help="client certificate (with --key-file)")
    p.add_argument("--key-file", help="key of the client certificate")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for an answer")


def register(subparsers: Any) -> None:
    """Add `hearth installer ...` to the main CLI."""
    inst = subparsers.add_parser("installer", help="push, read or roll back a site's config "
                                                   "over MQTT")
    sub = inst.add_subparsers(dest="installer_command", required=True)
    push = sub.add_parser("push", help="validate and apply a site file (or a patch) remotely")
    push.add_argument("file", help="site TOML (or a patch with --patch; .json also accepted)")
    push.add_argument("--patch", action="store_true", help="FILE is a merge patch, not a "
                                                           "whole site")
    push.add_argument("--dry-run", action="store_true", help="validate only; change nothing")
    push.add_argument("--max-bytes", type=int, default=262_144,
                      help="the controller's mqtt.max_config_bytes (default 262144): a bigger "
                           "request is refused here before it is sent")
    push.add_argument("--if-version", help="refuse if the site's config is not this version")
    _common(push)
    push.set_defaults(func=_push)
    get = sub.add_parser("get", help="print the current config (secrets redacted)")
    get.add_argument("--output", help="write it here instead of stdout")
    get.add_argument("--format", choices=["toml", "json"], default="toml")
    _common(get)
    get.set_defaults(func=_get)
    rb = sub.add_parser("rollback", help="go back to the previous config version")
    _common(rb)
    rb.set_defaults(func=_rollback)
