"""The wire format of closed ledger rows between a site and the fleet, checked strictly.

A site's uplink publishes each closed interval on `hearth/<site>/ledger/interval` and each
telemetry step on `hearth/<site>/ledger/telemetry` (QoS 1, not retained), as one JSON
object whose keys are the ledger's own column names (controller/ledger/tables.py): exact
figures as decimal strings, sats as integers. The fleet refuses a row with an unknown or
missing key, a wrong type or a decimal with more places than the column keeps, naming the
field — a half-understood row must never reach the fleet's books.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.types import TypeDecorator

from controller.ledger.tables import FixedDecimal, LedgerInterval, LedgerTelemetry

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_ROW_BYTES = 16384

# Columns the fleet does not carry: the site database's own keys.
_LOCAL_ONLY = {"id", "site", "supersedes_id"}
INTERVAL_COLUMNS = {c.name: c for c in LedgerInterval.__table__.columns  # type: ignore[attr-defined]
                    if c.name not in _LOCAL_ONLY}
TELEMETRY_COLUMNS = {c.name: c for c in LedgerTelemetry.__table__.columns  # type: ignore[attr-defined]
                     if c.name not in _LOCAL_ONLY}


# Bookkeeping columns a row may leave out (every figure is required).
_DEFAULTS: dict[str, Any] = {"rev": 0, "source": "live", "reason": None, "recorded_at_s": 0,
                             "dr_events": "", "btc_terms": ""}


class RowError(ValueError):
    """A refused row: `field` names what is wrong, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def encode_row(row: dict[str, Any], kind: str) -> bytes:
    """A ledger row (as `Ledger.intervals()`/`telemetry()` return it) -> the wire JSON."""
    cols = INTERVAL_COLUMNS if kind == "interval" else TELEMETRY_COLUMNS
    return json.dumps({k: _jsonable(row[k]) for k in cols if k in row},
                      separators=(",", ":")).encode()


def _check(name: str, col: Any, v: Any) -> Any:
    t = col.type
    if v is None:
        if col.nullable:
            return None
        raise RowError(name, "must not be null")
    if isinstance(t, FixedDecimal):
        if not isinstance(v, str):
            raise RowError(name, "must be a decimal string")
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise RowError(name, f"{v!r} is not a decimal number") from None
        if not d.is_finite():
            raise RowError(name, "must be finite")
        if d.scaleb(t.scale) != d.scaleb(t.scale).to_integral_value():
            raise RowError(name, f"has more than {t.scale} decimal places")
        if abs(d.scaleb(t.scale)) >= 2**63:
            raise RowError(name, "out of range")
        return d
    if isinstance(t, TypeDecorator):
        t = t.impl_instance
    if t.python_type is int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise RowError(name, "must be an integer")
        if abs(v) >= 2**63:
            raise RowError(name, "out of range")
        return v
    if t.python_type is float:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise RowError(name, "must be a number")
        if not math.isfinite(float(v)):
            raise RowError(name, "must be finite")
        return float(v)
    if t.python_type is str:
        if not isinstance(v, str):
            raise RowError(name, "must be a string")
        limit = getattr(t, "length", None)
        if limit is not None and len(v) > limit:
            raise RowError(name, f"longer than {limit} characters")
        return v
    raise RowError(name, f"unsupported column type {t!r}")  # pragma: no cover


def decode_row(payload: bytes, kind: str) -> dict[str, Any]:
    """Wire JSON -> a checked row dict (Decimal for exact columns). Raises RowError."""
    cols = INTERVAL_COLUMNS if kind == "interval" else TELEMETRY_COLUMNS
    if len(payload) > MAX_ROW_BYTES:
        raise RowError("payload", f"larger than {MAX_ROW_BYTES} bytes")
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RowError("payload", f"not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise RowError("payload", "must be a JSON object")
    unknown = sorted(set(obj) - set(cols))
    if unknown:
        raise RowError(unknown[0], "unknown field")
    out: dict[str, Any] = {}
    for name, col in cols.items():
        if name not in obj:
            if name in _DEFAULTS:
                out[name] = _DEFAULTS[name]
                continue
            if col.nullable:
                out[name] = None
                continue
            raise RowError(name, "missing")
        out[name] = _check(name, col, obj[name])
    if out["duration_s"] <= 0:
        raise RowError("duration_s", "must be above 0")
    if out["start_s"] < 0:
        raise RowError("start_s", "must not be negative")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
