"""A real Mosquitto broker for tests: free port, own config, password file, ACL, TLS.

Import it as ``import brokerkit`` (pytest has ``pythonpath = tests``). The API is small
and stays backward compatible; other suites (bridge, satellite firmware, HIL) rely on it.

    broker = brokerkit.Broker(tmp_path, users={"hearth": "pw"}, acl=ACL_TEXT, tls=True)
    with broker:                      # starts /usr/sbin/mosquitto, waits until it accepts
        broker.port                   # plain MQTT listener on 127.0.0.1
        broker.tls_port               # TLS listener (None unless tls=True)
        broker.pki.ca_file            # CA that signed the server certificate (tls=True)
        broker.pki.client_cert("ha")  # (cert, key) paths of a client certificate
        broker.restart()              # same ports, same config; retained messages are lost
        broker.kill()                 # SIGKILL, as a crash would
    # leaving the block stops it (SIGTERM, then SIGKILL)

As a fixture::

    @pytest.fixture
    def broker(tmp_path):
        with brokerkit.Broker(tmp_path, users={"u": "p"}) as b:
            yield b

Notes:
- Anonymous clients are refused unless ``allow_anonymous=True``.
- ``acl`` is the text of a Mosquitto ACL file (``user``/``topic``/``pattern`` lines);
  without it every authenticated user may read and write everything.
- Persistence is off: a restart starts with no retained messages and no sessions.
- The broker's own log (``log_type all``) is in ``broker.log_text()``; a test that fails
  because of the broker should print it.
- Certificates are made with the ``openssl`` command line (EC P-256, valid 2 days).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hil.rig.broker import free_port as _rig_free_port

__all__ = ["MOSQUITTO", "Broker", "BrokerError", "Pki", "free_port", "wait_until"]

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
HOST = "127.0.0.1"
# A TCP port on 127.0.0.1 that was free a moment ago (the broker retries on a race); the
# HIL rig's broker uses the same one.
free_port = _rig_free_port


class BrokerError(RuntimeError):
    """The broker could not be started (the message includes its log)."""




def wait_until(
    predicate: Callable[[], object], timeout_s: float = 10.0, what: str = "condition",
    interval_s: float = 0.02,
) -> None:
    """Poll `predicate` until it is truthy; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.1f} s waiting for {what}")
        time.sleep(interval_s)


def _run(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BrokerError(f"{' '.join(args)} failed: {proc.stderr.strip()}")


@dataclass
class Pki:
    """A throw-away CA, a server certificate for 127.0.0.1/localhost, client certificates."""

    dir: Path
    ca_file: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        if shutil.which("openssl") is None:
            raise BrokerError("openssl is not installed (Debian package 'openssl')")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
              "-days", "2", "-subj", "/CN=brokerkit test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
        pki = cls(d, d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key")
        pki._issue("server", "localhost", "serverAuth",
                   "subjectAltName=IP:127.0.0.1,DNS:localhost")
        return pki

    def _issue(self, stem: str, cn: str, usage: str, extra: str = "") -> tuple[Path, Path]:
        ext = self.dir / f"{stem}.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyAgreement\n"
            f"extendedKeyUsage={usage}\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n" + (extra + "\n" if extra else "")
        )
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={cn}"],
             self.dir)
        _run(["openssl", "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.crt", "-CAkey",
              "ca.key", "-CAcreateserial", "-out", f"{stem}.crt", "-days", "2",
              "-extfile", ext.name], self.dir)
        return self.dir / f"{stem}.crt", self.dir / f"{stem}.key"

    def client_cert(self, name: str) -> tuple[Path, Path]:
        """A client certificate with CN=`name`, signed by the CA: (cert, key)."""
        cert, key = self.dir / f"client-{name}.crt", self.dir / f"client-{name}.key"
        if cert.exists() and key.exists():
            return cert, key
        return self._issue(f"client-{name}", name, "clientAuth")


_LIVE: weakref.WeakSet[Broker] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    """A test that never left its `with` block must not leave a broker running."""
    for broker in list(_LIVE):
        broker.kill()


class Broker:
    """One Mosquitto process with a config written here; see the module docstring."""

    def __init__(
        self,
        workdir: Path | str,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        *,
        tls: bool = False,
        require_client_cert: bool = False,
        allow_anonymous: bool = False,
        extra_conf: str = "",
        start_timeout_s: float = 15.0,
    ) -> None:
        if not Path(MOSQUITTO).exists():
            raise BrokerError(f"{MOSQUITTO} not found (Debian package 'mosquitto')")
        self.dir = Path(workdir) / "mosquitto"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.users = dict(users or {})
        self.acl = acl
        self.tls = tls or require_client_cert
        self.require_client_cert = require_client_cert
        self.allow_anonymous = allow_anonymous
        self.extra_conf = extra_conf
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.tls_port: int | None = None
        self.pki: Pki | None = Pki.create(self.dir / "pki") if self.tls else None
        self.conf_file = self.dir / "mosquitto.conf"
        self.log_file = self.dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_credentials()

    # -- files ---------------------------------------------------------------------------

    def _write_credentials(self) -> None:
        self.password_file: Path | None = None
        if self.users:
            self.password_file = self.dir / "passwd"
            self.password_file.unlink(missing_ok=True)
            self.password_file.touch(mode=0o600)
            for name, password in self.users.items():
                _run(["mosquitto_passwd", "-b", str(self.password_file), name, password],
                     self.dir)
        self.acl_file: Path | None = None
        if self.acl is not None:
            self.acl_file = self.dir / "acl"
            self.acl_file.write_text(self.acl)
            self.acl_file.chmod(0o600)

    def _write_conf(self) -> None:
        lines = [
            "# written by tests/brokerkit.py",
            "per_listener_settings false",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence false",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
            "set_tcp_nodelay true",  # no Nagle delay between a PUBACK and the next packet
        ]
        if os.geteuid() == 0:
            # Stay the same user so the broker can read files in a 0700 tmp dir.
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        lines.append(f"listener {self.port} {HOST}")
        if self.tls_port is not None and self.pki is not None:
            lines += [
                f"listener {self.tls_port} {HOST}",
                f"cafile {self.pki.ca_file}",
                f"certfile {self.pki.server_cert}",
                f"keyfile {self.pki.server_key}",
                "tls_version tlsv1.2",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        self.conf_file.write_text("\n".join(lines) + "\n" + self.extra_conf + "\n")

    # -- process ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Broker:
        """Start (first time on new free ports, later on the same ports); wait until ready."""
        if self.running:
            return self
        fresh = self.port == 0
        for _attempt in range(5):
            if fresh:
                self.port = free_port()
                self.tls_port = free_port() if self.tls else None
            self._write_conf()
            if self._spawn_and_wait():
                return self
            if not fresh or "Address already in use" not in self.log_text():
                break
        raise BrokerError(f"mosquitto did not start; its log:\n{self.log_text()}")

    def _spawn_and_wait(self) -> bool:
        log = self.log_file.open("ab")
        try:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf_file)], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            log.close()
        _LIVE.add(self)
        ports = [self.port] + ([self.tls_port] if self.tls_port is not None else [])
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if all(_accepts(p) for p in ports):
                return True
            time.sleep(0.02)
        self._terminate(signal.SIGKILL)
        return False

    def _terminate(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (clean shutdown), SIGKILL if it does not exit within 10 s."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: what a crash or power cut looks like to the clients."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start on the same ports with the same config."""
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False
