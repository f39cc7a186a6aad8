"""The rig's own Mosquitto: a free port on 127.0.0.1, a password file, the shipped ACL.

Accounts mirror a site's (deploy/mosquitto/acl, read from the repository so the rig runs
the ACL that ships): `hearth` (the controller), `installer`, `homeassistant`, plus the
accounts a site adds for its satellite (`sat-<id>`: writes only its `sat/<id>/` topics and
reads its `cmd/#`, as firmware/README.md says), a DR `aggregator` (writes only
`cmd/dr_cap`) and `hil-observer` (reads `hearth/#`: the rig's eyes, no rights to write).
Passwords are random per run and written with `mosquitto_passwd`. Persistence is off, so
a restart (the `broker_restart` fault) drops every retained message and session, as a
broker that lost its disk would: the controller has to republish everything.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path

from hil.rig.scenario import ROOT

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = os.environ.get("MOSQUITTO_PASSWD", "mosquitto_passwd")
SHIPPED_ACL = ROOT / "deploy" / "mosquitto" / "acl"
HOST = "127.0.0.1"
CONTROLLER_USER = "hearth"
AGGREGATOR_USER = "aggregator"
OBSERVER_USER = "hil-observer"


class BrokerError(RuntimeError):
    """Mosquitto could not be set up or started (the message says why, with its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.3):
        return True
    return False


def rig_acl(site_id: str, sat_id: str | None) -> str:
    """The shipped ACL plus the satellite's, the aggregator's and the observer's rights."""
    text = SHIPPED_ACL.read_text()
    extra = ["", "# --- added by the HIL rig (hil/rig/broker.py) ---"]
    if sat_id is not None:
        base = f"hearth/{site_id}/sat/{sat_id}"
        extra += [f"user sat-{sat_id}"]
        extra += [f"topic write {base}/{t}" for t in ("availability", "telemetry", "event",
                                                      "ack")]
        extra += [f"topic read {base}/cmd/#", ""]
    extra += [f"user {AGGREGATOR_USER}", "topic write hearth/+/cmd/dr_cap",
              "topic read hearth/+/cmd/dr_cap/result", "",
              f"user {OBSERVER_USER}", "topic read hearth/#", ""]
    return text + "\n".join(extra) + "\n"


_LIVE: weakref.WeakSet[RigBroker] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """A rig that died mid-run must not leave a broker behind (it runs in its own session)."""
    for broker in list(_LIVE):
        broker._kill()


class RigBroker:
    """One mosquitto process; `stop()` / `start()` keep the port (a restart, not a move)."""

    def __init__(self, workdir: Path, site_id: str, sat_id: str | None = None) -> None:
        if not Path(MOSQUITTO).exists():
            raise BrokerError(f"{MOSQUITTO} not found (Debian package 'mosquitto')")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        users = [CONTROLLER_USER, "installer", "homeassistant", AGGREGATOR_USER, OBSERVER_USER]
        if sat_id is not None:
            users.append(f"sat-{sat_id}")
        self.passwords = {u: secrets.token_urlsafe(12) for u in users}
        self.port = 0
        self.conf_file = self.dir / "mosquitto.conf"
        self.log_file = self.dir / "mosquitto.log"
        self.passwd_file = self.dir / "passwd"
        self.acl_file = self.dir / "acl"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.passwd_file.unlink(missing_ok=True)
        self.passwd_file.touch(mode=0o600)
        for user, pw in self.passwords.items():
            r = subprocess.run([MOSQUITTO_PASSWD, "-b", str(self.passwd_file), user, pw],
                               capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise BrokerError(f"mosquitto_passwd failed for {user}: {r.stderr.strip()}")
        self.acl_file.write_text(rig_acl(site_id, sat_id))
        self.acl_file.chmod(0o600)

    def password_file_for(self, user: str, directory: Path) -> Path:
        """A client's password file (first line, mode 600), as `[mqtt] password_file`."""
        p = directory / f"{user}.pw"
        p.write_text(self.passwords[user] + "\n")
        p.chmod(0o600)
        return p

    def _write_conf(self) -> None:
        lines = ["# written by hil/rig/broker.py", "per_listener_settings false",
                 "allow_anonymous false", f"password_file {self.passwd_file}",
                 f"acl_file {self.acl_file}", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice",
                 "log_type information", "connection_messages true", "set_tcp_nodelay true",
                 "max_packet_size 262144", f"listener {self.port} {HOST}"]
        if os.geteuid() == 0:  # stay this user: the files are in a private directory
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        self.conf_file.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start (a free port the first time, the same port later); wait until it accepts.
        Blocking: call it from a thread in async code."""
        if self.running:
            return
        fresh = self.port == 0
        for _attempt in range(5 if fresh else 50):
            if fresh:
                self.port = free_port()
            self._write_conf()
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_file)],
                                              stdout=log, stderr=log,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
            _LIVE.add(self)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self._proc.poll() is None:
                if _accepts(self.port):
                    self.starts += 1
                    return
                time.sleep(0.02)
            self._kill()
            if not fresh:  # the old socket may linger a moment: try the same port again
                time.sleep(0.1)
        raise BrokerError(f"mosquitto did not start on port {self.port}; its log:\n"
                          f"{self.log_text()[-3000:]}")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s. Clients see their connection drop."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
