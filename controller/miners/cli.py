"""`hearth miners`: each miner's state, and commissioning writes that report what happened.

    hearth miners --config SITE.toml [--json]
    hearth miners set NAME --watts W | --pause | --resume --config SITE.toml [--no-wait]

`set` sends one command through the same driver the controller uses (clamped, idempotent,
verified), then polls the miner until its measured power settles or the declared settle
time runs out, and prints what the miner actually did. Exit codes: 0 ok, 1 a miner is
unavailable / refused / did not settle, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from controller.errors import InputError, Problem
from controller.miners.base import MinerDriver, MinerStatus, SetResult, State


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("miners", help="show each miner's state; commissioning writes")
    p.add_argument("--config", help="site TOML")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_show)
    sub = p.add_subparsers(dest="miners_command")
    s = sub.add_parser("set", help="set one miner's power, or pause / resume it")
    s.add_argument("name", help="miner name from the site file")
    s.add_argument("--config", default=argparse.SUPPRESS, help="site TOML")
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--watts", type=float, help="power target in W")
    what.add_argument("--pause", action="store_true")
    what.add_argument("--resume", action="store_true")
    s.add_argument("--no-wait", action="store_true", help="do not wait for power to settle")
    s.set_defaults(func=_set)


def _drivers(args: argparse.Namespace) -> dict[str, MinerDriver]:
    from controller.config import load_site
    from controller.miners.factory import build_drivers

    if not args.config:
        raise InputError("arguments", [Problem("--config", "a site TOML file is required")])
    return build_drivers(load_site(args.config))


def _status_dict(st: MinerStatus) -> dict[str, Any]:
    return {"name": st.name, "api": st.api, "state": str(st.state),
            "power_w": round(st.power_w, 1), "hashrate_ths": round(st.hashrate_ths, 3),
            "temp_c": st.temp_c, "target_w": st.target_w, "power_estimated": st.power_estimated,
            "detail": st.detail}


def _row(st: MinerStatus) -> str:
    temp = f"{st.temp_c:.0f} °C" if st.temp_c is not None else "-"
    target = f"{st.target_w:.0f} W" if st.target_w is not None else "-"
    power = f"{st.power_w:.0f} W{'~' if st.power_estimated else ''}"
    return (f"{st.name:<14} {st.api:<11} {st.state:<12} {power:>8} "
            f"{st.hashrate_ths:>9.3f} {temp:>7} {target:>8}  {st.detail}")


async def _read_all(drivers: dict[str, MinerDriver]) -> list[MinerStatus]:
    try:
        return list(await asyncio.gather(*(d.read() for d in drivers.values())))
    finally:
        await asyncio.gather(*(d.close() for d in drivers.values()))


def _show(args: argparse.Namespace) -> int:
    drivers = _drivers(args)
    statuses = asyncio.run(_read_all(drivers))
    if args.json:
        print(json.dumps([_status_dict(s) for s in statuses], indent=2))
    else:
        print(f"{'miner':<14} {'api':<11} {'state':<12} {'power':>8} {'TH/s':>9} {'temp':>7} "
              f"{'target':>8}  detail")
        for s in statuses:
            print(_row(s))
    return 1 if any(s.state is State.UNAVAILABLE for s in statuses) else 0


async def _do_set(d: MinerDriver, args: argparse.Namespace) -> tuple[SetResult, Any]:
    try:
        await d.read()
        if args.pause:
            r = await d.pause()
            target = 0.0
        elif args.resume:
            r = await d.resume()
            target = d.status.target_w or d.caps.max_power_w
        else:
            if d.control.value != "on_off" and d.caps.can_pause and args.watts > 0:
                await d.resume()
            r = await d.set_power(args.watts)
            target = r.sent_w if r.sent_w is not None else (r.confirmed_w or args.watts)
        outcome = None
        if r.ok and not args.no_wait and d.control.value != "read_only":
            outcome = await d.settle(target)
        return r, outcome
    finally:
        await d.close()


def _set(args: argparse.Namespace) -> int:
    drivers = _drivers(args)
    d = drivers.get(args.name)
    if d is None:
        raise InputError("arguments", [Problem("NAME", f"no miner {args.name!r} in the site "
                                               f"file (have {sorted(drivers)})")])
    if args.watts is not None and not args.watts >= 0:
        raise InputError("arguments", [Problem("--watts", "must be a power >= 0 W")])
    r, outcome = asyncio.run(_do_set(d, args))
    out: dict[str, Any] = {"miner": d.name, "api": d.api, "action": r.action,
                           "requested_w": r.requested_w, "sent_w": r.sent_w,
                           "confirmed_w": r.confirmed_w, "reason": r.reason}
    if outcome is not None:
        out |= {"settled": outcome.converged, "settle_s": round(outcome.elapsed_s, 2),
                "settle_note": outcome.reason, "now": _status_dict(outcome.status)}
    if getattr(args, "json", False):
        print(json.dumps(out, indent=2))
    else:
        print(f"{d.name} ({d.api}): {r.action}"
              + (f" {r.sent_w:.0f} W" if r.sent_w is not None else "")
              + (f" — {r.reason}" if r.reason else ""))
        if outcome is not None:
            verdict = (f"settled in {outcome.elapsed_s:.1f} s" if outcome.converged
                       else f"NOT settled: {outcome.reason}")
            print(f"  miner now: {_row(outcome.status).strip()}")
            print(f"  {verdict}")
    if not r.ok or (outcome is not None and not outcome.converged):
        print(f"{d.name}: the miner did not do what was asked ({r.action})", file=sys.stderr)
        return 1
    return 0
