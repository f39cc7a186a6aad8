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


def _engine(url: str) -> object:
    from controller.fleet.store import ensure_schema, make_fleet_engine

    try:
        engine = make_fleet_engine(url)
        ensure_schema(engine)
    except ValueError as exc:
        raise InputError("arguments", [Problem("--db", str(exc))]) from None
    except Exception as exc:  # unreachable server, refused login: say so, no traceback
        raise InputError("arguments", [Problem("--db", f"cannot open {url}: {exc}")]) from None
    return engine


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

    from sqlalchemy import Engine

    from controller.fleet.ingest import Ingest
    from controller.fleet.mqttlink import ClusterSettings

    s = _cluster_settings(args, "ingest")
    assert isinstance(s, ClusterSettings)
    engine = _engine(args.db)
    assert isinstance(engine, Engine)
    ing = Ingest(engine, s).start()
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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy import Engine

    from controller.fleet.page import create_app

    engine = _engine(args.db)
    assert isinstance(engine, Engine)
    uvicorn.run(create_app(engine, stale_s=args.stale_s), host=args.host, port=args.port,
                log_level="warning")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    import json
    import signal
    import threading
    import time

    from controller.fleet.dispatch import DispatchService
    from controller.fleet.mqttlink import ClusterSettings

    kind, kw = ("reduce", args.shed_kw) if args.shed_kw is not None else ("absorb", args.add_kw)
    if kw is None or not kw > 0:
        raise InputError("arguments", [Problem("--shed-kw", "give --shed-kw or --add-kw > 0")])
    if not 0 < args.minutes <= 7 * 24 * 60:
        raise InputError("arguments", [Problem("--minutes", "above 0 and at most 7 days")])
    s = _cluster_settings(args, "dispatch")
    assert isinstance(s, ClusterSettings)
    engine = _engine(args.db) if args.db else None
    svc = DispatchService(s, engine=engine, stale_s=args.stale_s).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        time.sleep(args.warmup_s)  # fresh telemetry first: retained values may be old
        try:
            ev = svc.dispatcher.start(kw * 1000, args.minutes * 60, kind, args.event_id)
        except ValueError as exc:
            raise InputError("arguments", [Problem("request", str(exc))]) from None
        print(json.dumps({"event_id": ev.event_id, "sites": len(ev.assignments),
                          "assigned_w": round(sum(a.share_w for a in
                                                  ev.assignments.values()))}), flush=True)
        while not stop.wait(1.0):
            summary = svc.dispatcher.check()
            if summary is None:
                break
            svc.save(summary)
            print(json.dumps({k: summary[k] for k in ("event_id", "status", "requested_w",
                                                      "delivered_w", "replaced")}),
                  flush=True)
            if summary["status"] != "active":
                break
    except KeyboardInterrupt:
        pass
    finally:
        ev2 = svc.dispatcher.event
        if ev2 is not None and ev2.status == "active":
            svc.dispatcher.cancel()  # Ctrl-C / SIGTERM ends the request at every site
            summary = svc.dispatcher.check()
            if summary is not None:
                svc.save(summary)
            time.sleep(0.5)
        svc.stop()
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

    sv = fs.add_parser("serve", help="the fleet page (FastAPI) over the fleet database")
    sv.add_argument("--db", required=True, help="postgresql+psycopg://user@host/db")
    sv.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    sv.add_argument("--port", type=int, default=8090)
    sv.add_argument("--stale-s", type=float, default=120.0,
                    help="a site without telemetry this long shows offline")
    sv.set_defaults(func=_serve)

    d = fs.add_parser("dispatch", help="one fleet DR request, split over the sites")
    _add_cluster_args(d, "cluster account (default: dispatch)")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--shed-kw", type=float, help="reduce the fleet's miners by this")
    g.add_argument("--add-kw", type=float, help="the miners take this much more")
    d.add_argument("--minutes", type=float, required=True)
    d.add_argument("--event-id", help="default: fleet-<unix time>")
    d.add_argument("--db", help="record progress for the fleet page")
    d.add_argument("--warmup-s", type=float, default=8.0,
                   help="listen this long for fresh telemetry before splitting")
    d.add_argument("--stale-s", type=float, default=30.0)
    d.set_defaults(func=_dispatch)
