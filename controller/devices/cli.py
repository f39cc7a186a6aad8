"""`hearth scan modbus`, `hearth read` and `hearth modbus-proxy`.

`register(subparsers)` adds them to the main `hearth` parser; each handler is stored as
``func`` and returns the exit code. `main()` runs them on their own
(``python -m controller.devices.cli``) until they are wired into controller/cli.py.

Exit codes: 0 ok, 1 a device failed or nothing was found, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

from controller.errors import InputError, Problem


def _host_port(text: str, default_port: int | None) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not port:
        if default_port is None:
            raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT")
        return host or "127.0.0.1", default_port
    try:
        p = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: port {port!r} is not a number") from None
    if not 1 <= p <= 65535 and not (p == 0 and default_port is None):
        raise argparse.ArgumentTypeError(f"{text!r}: port must be 1..65535")
    return host or "127.0.0.1", p


def _unit(text: str) -> int:
    try:
        u = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unit id {text!r} is not a number") from None
    if not 0 <= u <= 255:
        raise argparse.ArgumentTypeError("unit id must be 0..255")
    return u




# -- scan ---------------------------------------------------------------------------------


def _scan_modbus(args: argparse.Namespace) -> int:
    from controller.devices.scan import DEFAULT_UNITS, render, scan_tcp

    units = tuple(args.unit) if args.unit else DEFAULT_UNITS
    reports = asyncio.run(scan_tcp(args.host, args.port, units, args.timeout))
    print(render(reports, args.host, args.port))
    return 0 if any(r.found for r in reports) else 1


# -- read ---------------------------------------------------------------------------------


async def _read_all(path: str) -> tuple[dict[str, Any], list[str]]:
    from controller.config import load_site
    from controller.devices.acquisition import Acquisition

    cfg = load_site(path)
    if not cfg.devices:
        raise InputError(path, [Problem("devices", "no [[devices]] configured")])
    acq = Acquisition(cfg.devices, source=path)
    try:
        results = await acq.read_once()
        now = acq.clock()
        doc: dict[str, Any] = {"read_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "measurements": {}, "devices": {}}
        for q, r in acq.readings().items():
            doc["measurements"][q] = {"value": r.value, "age_s": round(now - r.at_s, 3)}
        failed = []
        for p in acq.pollers:
            ok = results[p.name]
            doc["devices"][p.name] = {
                "ok": ok, "map": p.map.id, "role": p.cfg.role, "status": str(p.state.status),
                "error": p.state.last_error,
                "values": {q: r.value for q, r in p.readings.items()},
                "missing": dict(p.missing),
            }
            if not ok:
                failed.append(f"device {p.name} ({p.map.id} at "
                              f"{p.link.endpoint}): {p.state.last_error}")
        return doc, failed
    finally:
        await acq.stop()


def _read(args: argparse.Namespace) -> int:
    doc, failed = asyncio.run(_read_all(args.config))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for q, m in doc["measurements"].items():
            print(f"{q:20} {m['value']:>12.1f}   ({m['age_s']:.2f} s old)")
        for name, d in doc["devices"].items():
            state = "ok" if d["ok"] else "FAILED"
            print(f"device {name}: {state}" + "".join(
                f"; {q} not available ({why})" for q, why in d["missing"].items()))
    for line in failed:
        print(line, file=sys.stderr)
    return 1 if failed else 0


# -- proxy --------------------------------------------------------------------------------


async def _proxy_main(args: argparse.Namespace) -> None:
    from controller.devices.proxy import ModbusProxy

    up_host, up_port = args.upstream
    host, port = args.listen
    proxy = ModbusProxy(up_host, up_port, timeout_s=args.timeout,
                        connect_delay_s=args.connect_delay,
                        inter_request_delay_s=args.inter_request_delay)
    bound = await proxy.start(host, port)
    print(f"modbus proxy: {host}:{bound} -> {up_host}:{up_port}", flush=True)
    try:
        await proxy.serve_forever()
    finally:
        await proxy.stop()


def _proxy(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_proxy_main(args))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = subparsers.add_parser("scan", help="find devices on the network")
    scan_sub = scan.add_subparsers(dest="scan_command", metavar="BUS", required=True)
    sm = scan_sub.add_parser(
        "modbus", help="list the SunSpec models or the shipped map a Modbus TCP device fits",
    )
    sm.add_argument("--host", required=True)
    sm.add_argument("--port", type=int, default=502)
    sm.add_argument("--unit", type=_unit, action="append",
                    help="unit id to try (repeatable; default: 1, 3, 100, 200, 240)")
    sm.add_argument("--timeout", type=float, default=1.0, help="reply timeout in seconds")
    sm.set_defaults(func=_scan_modbus)

    rd = subparsers.add_parser(
        "read", help="read every configured Modbus device once and print the measurements",
    )
    rd.add_argument("--config", required=True, help="site TOML with [[devices]]")
    rd.add_argument("--json", action="store_true", help="print one JSON document")
    rd.set_defaults(func=_read)

    px = subparsers.add_parser(
        "modbus-proxy",
        help="share a single-client Modbus TCP device (SolarEdge, Huawei) between clients",
    )
    px.add_argument("--upstream", required=True, type=lambda t: _host_port(t, 502),
                    help="the device, HOST[:PORT] (default port 502)")
    px.add_argument("--listen", type=lambda t: _host_port(t, None), default=("0.0.0.0", 5020),
                    help="where clients connect, HOST:PORT (default 0.0.0.0:5020)")
    px.add_argument("--timeout", type=float, default=3.0, help="upstream reply timeout (s)")
    px.add_argument("--connect-delay", type=float, default=0.0,
                    help="pause after connecting upstream (Huawei: 1)")
    px.add_argument("--inter-request-delay", type=float, default=0.0,
                    help="pause between upstream requests (s)")
    px.set_defaults(func=_proxy)
