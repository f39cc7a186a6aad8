"""Real servers for the fleet tests: a 3-node NATS cluster (MQTT + JetStream) and a
PostgreSQL, each started here on free loopback ports with their own config and data
directory (never the machine's running nats-server, RabbitMQ or PostgreSQL).

    with NatsCluster(tmp_path, accounts={"s1": "pw", "ingest": "pw"}) as cl:
        cl.mqtt_ports            # one MQTT listener per node
        cl.kill(1)               # SIGKILL node 1, as a crash would; cl.start_node(1) again
    pg = Postgres.start(dir)     # initdb + pg_ctl; pg.create_db() -> a SQLAlchemy URL
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from brokerkit import _accepts, free_port, wait_until

from controller.fleet.cluster import Node, Tls, node_conf
from hil.fleetsim import interval_row

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsCluster:
    def __init__(self, workdir: Path, accounts: Mapping[str, str], size: int = 3,
                 tls: Tls | None = None) -> None:
        self.dir = Path(workdir) / "nats"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.accounts = dict(accounts)
        self.tls = tls
        self.nodes = [Node(f"n{i}", free_port(), free_port(), free_port(),
                           self.dir / f"n{i}" / "js") for i in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def mqtt_ports(self) -> list[int]:
        return [n.mqtt_port for n in self.nodes]

    def conf_file(self, i: int) -> Path:
        return self.dir / f"n{i}.conf"

    def log_file(self, i: int) -> Path:
        return self.dir / f"n{i}.log"

    def start_node(self, i: int, wait: bool = True) -> None:
        n = self.nodes[i]
        self.conf_file(i).write_text(node_conf(n, self.nodes, self.accounts, self.tls))
        log = self.log_file(i).open("ab")
        try:
            self.procs[i] = subprocess.Popen(
                [NATS, "-c", str(self.conf_file(i))], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        if wait:
            wait_until(lambda: _accepts(n.mqtt_port), 15, f"NATS node {n.name} MQTT port")

    def start(self) -> NatsCluster:
        if not Path(NATS).exists():
            raise RuntimeError(f"{NATS} not found (Debian package 'nats-server')")
        for i in range(len(self.nodes)):
            self.start_node(i, wait=False)
        for n in self.nodes:
            wait_until(lambda n=n: _accepts(n.mqtt_port), 15, f"NATS node {n.name}")
        # JetStream needs a meta leader before the first MQTT session can be stored.
        wait_until(lambda: any("JetStream cluster new metadata leader" in self.log(i)
                               for i in range(len(self.nodes))), 20, "JetStream meta leader")
        return self

    def log(self, i: int) -> str:
        try:
            return self.log_file(i).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _signal(self, i: int, sig: signal.Signals) -> None:
        p, self.procs[i] = self.procs[i], None
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def kill(self, i: int) -> None:
        self._signal(i, signal.SIGKILL)

    def stop(self) -> None:
        for i in range(len(self.nodes)):
            self._signal(i, signal.SIGTERM)

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be started here (None: it can)."""
    if not PG_BIN:
        return ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb; "
                "Debian package 'postgresql', `make system-deps` installs it)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to run initdb as"
    return None


class Postgres:
    """A throw-away PostgreSQL cluster in a temp dir, on a free loopback port, trust auth."""

    def __init__(self, data: Path, port: int, bindir: Path, user: str | None) -> None:
        self.data, self.port, self.bindir, self.user = data, port, bindir, user

    def _cmd(self, args: list[str]) -> list[str]:
        return (["runuser", "-u", self.user, "--"] if self.user else []) + args

    @classmethod
    def start(cls) -> Postgres:
        why = pg_unavailable()
        if why:
            raise RuntimeError(why)
        bindir = Path(PG_BIN[-1]).parent
        user = "postgres" if os.geteuid() == 0 else None
        base = Path(tempfile.mkdtemp(prefix="hearth-fleet-pg-"))
        if user:
            pw = pwd.getpwnam(user)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        pg = cls(base / "data", free_port(), bindir, user)
        subprocess.run(pg._cmd([str(bindir / "initdb"), "-D", str(pg.data), "-U", "postgres",
                                "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)
        opts = (f"-p {pg.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        subprocess.run(pg._cmd([str(bindir / "pg_ctl"), "-D", str(pg.data), "-l",
                                str(base / "pg.log"), "-o", opts, "-w", "start"]),
                       check=True, capture_output=True)
        return pg

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self) -> str:
        import sqlalchemy as sa

        name = "t_" + uuid.uuid4().hex[:10]
        eng = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        eng.dispose()
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(self._cmd([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                                      "immediate", "stop"]), check=True, capture_output=True)
        shutil.rmtree(self.data.parent, ignore_errors=True)


def wait(pred: object, timeout_s: float, what: str) -> None:
    wait_until(pred, timeout_s, what)  # type: ignore[arg-type]


__all__ = ["NatsCluster", "Postgres", "interval_row", "mqtt_client", "pg_unavailable",
           "telemetry_row", "wait"]


def telemetry_row(start_s: int, miner_w: float = 1400.0) -> dict[str, object]:
    from controller.ledger.tables import LedgerTelemetry

    return LedgerTelemetry(site=1, start_s=start_s, duration_s=60.0, pv_w=5000.0,
                           load_w=600.0, grid_w=-3000.0, battery_w=0.0, miner_w=miner_w,
                           heat_to_tank_w=1300.0, heat_from_tank_w=0.0, hashrate_ths=13.5,
                           soc_pct=None, tank_c=51.5, import_price=0.21,
                           export_price=0.04).model_dump()


def mqtt_client(port: int, user: str, password: str, client_id: str,
                clean: bool = True, ca_file: Path | None = None) -> object:
    """A connected paho client (MQTT 3.1.1, network loop running)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    if ca_file is not None:
        c.tls_set(ca_certs=str(ca_file))
    c.connect("127.0.0.1", port, 15)
    c.loop_start()
    return c
