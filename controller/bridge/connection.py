"""Broker connection settings and the paho-mqtt client built from them.

paho-mqtt 2.x with CallbackAPIVersion.VERSION2 and MQTT v5. Shared by the bridge (on the
controller) and `hearth installer` (on a laptop).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.config.mqtt import MqttSection
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    username: str
    password: str
    client_id: str
    keepalive_s: int = 30
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_section(cls, section: MqttSection, base_dir: Path, site_id: str) -> BrokerSettings:
        """Resolve paths against the site file's directory and read the password file."""
        problems: list[Problem] = []

        def resolve(p: str | None, where: str) -> Path | None:
            if p is None:
                return None
            path = Path(p) if Path(p).is_absolute() else base_dir / p
            if not path.is_file():
                problems.append(Problem(where, f"file not found: {path}"))
            return path

        pw_path = resolve(section.password_file, "mqtt.password_file")
        tls = section.tls
        ca = resolve(tls.ca_file, "mqtt.tls.ca_file") if tls else None
        cert = resolve(tls.cert_file, "mqtt.tls.cert_file") if tls else None
        key = resolve(tls.key_file, "mqtt.tls.key_file") if tls else None
        password = ""
        if pw_path is not None and not problems:
            password = read_password(pw_path, "mqtt.password_file", problems)
        if problems:
            raise InputError("site config", problems)
        return cls(
            host=section.host, port=section.effective_port, username=section.username,
            password=password, client_id=section.client_id or f"hearth-{site_id}",
            keepalive_s=section.keepalive_s, tls=tls is not None, ca_file=ca,
            cert_file=cert, key_file=key,
        )


def read_password(path: Path, where: str, problems: list[Problem]) -> str:
    """The first line of a password file; warns if others may read it."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(Problem(where, f"cannot read {path}: {err}"))
        return ""
    if st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s (%s) is readable by other users; chmod 600 it", where, path)
    password = text.splitlines()[0] if text else ""
    if not password:
        problems.append(Problem(where, f"{path} is empty; its first line is the password"))
    return password


def make_client(s: BrokerSettings) -> mqtt.Client:
    """A paho v5 client with credentials and TLS set, not yet connected."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=s.client_id,
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(s.username, s.password)
    if s.tls:
        ctx = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH,
            cafile=str(s.ca_file) if s.ca_file is not None else None,
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if s.cert_file is not None and s.key_file is not None:
            ctx.load_cert_chain(str(s.cert_file), str(s.key_file))
        client.tls_set_context(ctx)
    return client


def publish_properties() -> Properties:
    """Empty MQTT v5 PUBLISH properties (paho's constructor is untyped)."""
    props: Properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    return props


def no_delay(client: mqtt.Client) -> None:
    """Disable Nagle on the connected socket (call from on_connect).

    An answer right after a PUBACK would otherwise wait for the broker's delayed TCP ACK
    (~40 ms on Linux, twice per round trip); paho does not set TCP_NODELAY itself.
    """
    sock = client.socket()
    if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
