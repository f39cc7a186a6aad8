"""`hearth ledger report`, `hearth ledger export` and `hearth ledger payouts import`.

`register(subparsers)` adds the `ledger` command group to the main `hearth` parser. The
database is named by `--db URL` or found through a site file (`--config SITE.toml`, its
`[ledger]` section). Handlers let `InputError` propagate (exit code 2).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from controller.errors import InputError, Problem
from controller.ledger.query import Ledger, local_day_bounds, render_report


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _month(text: str) -> tuple[int, int]:
    try:
        d = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}") from None
    return d.year, d.month


def _readable(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A database that is corrupt, foreign or unreachable is bad input (exit 2 with a
    message naming it), not a traceback."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from alembic.util import CommandError
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return func(args)
        except (SQLAlchemyError, CommandError) as err:
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            where = args.db if args.db is not None else f"the ledger of {args.config}"
            raise InputError(str(where), [Problem("", f"cannot read this ledger database "
                                                      f"(corrupt, not a Hearth ledger, or "
                                                      f"unreachable): {reason}")]) from None

    return run


def _open(args: argparse.Namespace) -> Ledger:
    if (args.db is None) == (args.config is None):
        raise InputError("hearth ledger", [Problem("--db/--config",
                                                   "give exactly one of --db URL and "
                                                   "--config SITE.toml")])
    site = args.site
    if args.config is not None:
        from controller.config import load_site

        cfg = load_site(args.config)
        url = cfg.ledger.url
        site = site or cfg.site.id
    else:
        url = args.db
    return Ledger.open(url, site)


@_readable
def _report(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        if args.day is not None:
            rep = ledger.day_report(args.day)
        else:
            year, month = args.month
            rep = ledger.month_report(year, month)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(rep.as_json(), indent=2))
    else:
        sys.stdout.write(render_report(rep))
    return 0


@_readable
def _export(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        start = local_day_bounds(args.start, ledger.tz)[0] if args.start else None
        end = local_day_bounds(args.end, ledger.tz)[1] if args.end else None
        if start is not None and end is not None and end <= start:
            raise InputError("hearth ledger export", [Problem("--to", "is before --from")])
        if args.csv == "-":
            n = ledger.export_csv(sys.stdout, start, end, history=args.history)
        else:
            try:
                with Path(args.csv).open("w", encoding="utf-8", newline="") as out:
                    n = ledger.export_csv(out, start, end, history=args.history)
            except OSError as err:
                raise InputError(args.csv, [Problem("", f"cannot write: {err.strerror}")]) \
                    from None
    finally:
        ledger.close()
    if args.csv != "-":
        print(f"{args.csv}: {n} interval rows", file=sys.stderr)
    return 0


@_readable
def _payouts_import(args: argparse.Namespace) -> int:
    from controller.economics.payouts import read_payouts_csv

    payouts = read_payouts_csv(args.csv)  # refused as a whole before touching the ledger
    ledger = _open(args)
    try:
        new = ledger.import_payouts(payouts)
    finally:
        ledger.close()
    print(f"{args.csv}: {len(payouts)} payouts read, {new} new, "
          f"{len(payouts) - new} already in the ledger")
    return 0


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (sqlite:///path or postgresql+psycopg://...)")
    p.add_argument("--config", type=Path, help="site TOML; its [ledger] names the database")
    p.add_argument("--site", help="site id (needed when the database holds several)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ledger report`, `ledger export` and `ledger payouts import`."""
    led = subparsers.add_parser(
        "ledger", help="revenue ledger: reports, CSV export, pool payouts",
        description="Per-interval fiat, BTC and heat accounting (docs/ledger.md).")
    sub = led.add_subparsers(dest="ledger_command", metavar="COMMAND", required=True)

    rep = sub.add_parser("report", help="a day or a month as a table (local time)")
    _db_args(rep)
    when = rep.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", type=_date, help="local day YYYY-MM-DD: one row per interval")
    when.add_argument("--month", type=_month, help="local month YYYY-MM: one row per day")
    rep.add_argument("--json", action="store_true", help="print the report as JSON instead")
    rep.set_defaults(func=_report)

    exp = sub.add_parser("export", help="intervals as CSV (exact decimals, UTC times)")
    _db_args(exp)
    exp.add_argument("--csv", required=True, help="output file, or - for stdout")
    exp.add_argument("--from", dest="start", type=_date, help="first local day")
    exp.add_argument("--to", dest="end", type=_date, help="last local day (inclusive)")
    exp.add_argument("--history", action="store_true",
                     help="include superseded revisions (corrections keep the originals)")
    exp.set_defaults(func=_export)

    pay = sub.add_parser("payouts", help="actual pool payouts, to compare with expected sats")
    pay_sub = pay.add_subparsers(dest="payouts_command", metavar="COMMAND", required=True)
    imp = pay_sub.add_parser("import", help="import a payouts CSV (see economics/payouts.py)")
    _db_args(imp)
    imp.add_argument("--csv", required=True, type=Path, help="payouts CSV")
    imp.set_defaults(func=_payouts_import)
