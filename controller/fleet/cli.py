"""`hearth fleet ...`: argument parsing only; the work is in the fleet modules."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from controller.errors import InputError, Problem


def _cluster_settings(args: argparse.Namespace, default_user: str) -> object:
    from controller.fleet.mqttlink import ClusterSettings

    try:
        return ClusterSettings.from_args(args.cluster, args.username or default_user,
                                         args.password_file, args.ca_file)
    except (ValueError, OSError) as exc:
        raise InputError("arguments", [Problem("--cluster", str(exc))]) from None


def _bridge_config(args: argparse.Namespace) -> int:
    from controller.config import load_site
    from controller.fleet.bridgeconf import BridgeSettings, bridge_conf
    from controller.fleet.mqttlink import ClusterSettings

    cfg = load_site(args.config)
    try:
        nodes = ClusterSettings.parse_nodes(args.cluster)
        lines = Path(args.password_file).read_text().splitlines()
        if not lines or not lines[0]:
            raise ValueError(f"--password-file: {args.password_file} is empty")
        text = bridge_conf(BridgeSettings(
            cfg.site.id, nodes, args.username or cfg.site.id, lines[0],
            Path(args.ca_file) if args.ca_file else None,
            Path(args.cert_file) if args.cert_file else None,
            Path(args.key_file) if args.key_file else None))
    except (ValueError, OSError) as exc:
        field = str(exc).split(":")[0] if str(exc).startswith("--") else "--cluster"
        raise InputError("arguments", [Problem(field, str(exc))]) from None
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(args.output, 0o600)
    else:
        sys.stdout.write(text)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    import signal
    import threading

    from controller.fleet.ingest import Ingest
    from controller.fleet.mqttlink import ClusterSettings
    from controller.fleet.store import make_fleet_engine

    s = _cluster_settings(args, "ingest")
    assert isinstance(s, ClusterSettings)
    ing = Ingest(make_fleet_engine(args.db), s).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    ing.stop()
    return 0


def _uplink(args: argparse.Namespace) -> int:
    import signal

    from controller.config import load_site
    from controller.fleet.uplink import Uplink

    cfg = load_site(args.config)
    try:
        up = Uplink(cfg, Path(args.config), hmi_url=args.hmi_url, window_h=args.window_h,
                    poll_s=args.poll_s)
    except ValueError as exc:
        raise InputError(args.config, [Problem("mqtt", str(exc))]) from None
    signal.signal(signal.SIGTERM, lambda *_: up.stop())
    try:
        up.run()
    except KeyboardInterrupt:
        up.stop()
    return 0


def _add_cluster_args(p: argparse.ArgumentParser, user_help: str) -> None:
    p.add_argument("--cluster", required=True, help="host:port[,host:port...] of the "
                   "cluster's MQTT listeners (the first that answers is used)")
    p.add_argument("--username", help=user_help)
    p.add_argument("--password-file", help="first line = password (or $HEARTH_FLEET_PASSWORD)")
    p.add_argument("--ca-file", help="CA of the cluster's TLS certificate (enables TLS)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = sub.add_parser("fleet", help="many sites: cluster link, ingest, page, fleet DR")
    fs = fleet.add_subparsers(dest="fleet_command", required=True)

    b = fs.add_parser("bridge-config", help="the site Mosquitto's bridge to the fleet cluster")
    b.add_argument("--config", required=True, help="site TOML")
    b.add_argument("--cluster", required=True, help="host:port[,host:port...]")
    b.add_argument("--username", help="the site's cluster account (default: the site id)")
    b.add_argument("--password-file", required=True, help="first line = the cluster password")
    b.add_argument("--ca-file", help="CA of the cluster's TLS certificate")
    b.add_argument("--cert-file", help="client certificate (optional, with --key-file)")
    b.add_argument("--key-file")
    b.add_argument("--output", help="write here, mode 0600 (default: stdout)")
    b.set_defaults(func=_bridge_config)

    u = fs.add_parser("uplink", help="publish the site's closed ledger rows for the fleet")
    u.add_argument("--config", required=True, help="site TOML")
    u.add_argument("--hmi-url", help="the site's wall page as the fleet should link it")
    u.add_argument("--window-h", type=float, default=48.0, help="re-offer rows this old")
    u.add_argument("--poll-s", type=float, default=30.0)
    u.set_defaults(func=_uplink)

    i = fs.add_parser("ingest", help="cluster -> PostgreSQL (telemetry, ledger intervals)")
    _add_cluster_args(i, "cluster account (default: ingest)")
    i.add_argument("--db", required=True, help="postgresql+psycopg://user@host/db")
    i.set_defaults(func=_ingest)
