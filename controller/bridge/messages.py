"""Decoding untrusted MQTT payloads and encoding answers.

Every request gets exactly one answer: `{"ok": true, ...}` or `{"ok": false, "errors":
[{"field": ..., "reason": ...}]}`. Decoding never raises anything but InputError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from controller.errors import InputError, Problem


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number out of range: {text}")
    return x


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_json(payload: bytes, limit_bytes: int, source: str, *,
                empty_ok: bool = False) -> Any:
    """The payload as JSON, or InputError with a reason a person can act on."""
    if len(payload) > limit_bytes:
        raise InputError(source, [Problem("payload", f"too large: {len(payload)} bytes, the "
                                          f"limit is {limit_bytes}")])
    if not payload.strip():
        if empty_ok:
            return {}
        raise InputError(source, [Problem("payload", "is empty; expected a JSON object")])
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(source, [Problem("payload", f"not UTF-8 ({err.reason} at byte "
                                          f"{err.start})")]) from None
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constants)
    except json.JSONDecodeError as err:
        raise InputError(source, [Problem("payload", f"not JSON: {err.msg} at line "
                                          f"{err.lineno} column {err.colno}")]) from None
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise InputError(source, [Problem("payload", f"not acceptable JSON: {reason}")]) \
            from None


def _jsonable(x: Any) -> Any:
    if isinstance(x, Decimal):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def encode(obj: Any) -> bytes:
    """Compact UTF-8 JSON. A lone surrogate (echoed from a hostile request) is written as
    its escape, so the output is always valid UTF-8 and valid JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_jsonable).encode("utf-8", errors="backslashreplace")


def ok_reply(kind: str, name: str, request_id: str | None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": True, kind: name}
    if request_id is not None:
        out["id"] = request_id
    out.update(fields)
    return out


def error_reply(kind: str, name: str, request_id: str | None,
                problems: Sequence[Problem]) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, kind: name}
    if request_id is not None:
        out["id"] = request_id
    out["errors"] = [{"field": p.where, "reason": p.reason} for p in problems]
    return out


def request_id_of(doc: Any) -> str | None:
    """An optional `id` a client without MQTT v5 can use to match answers to requests."""
    if isinstance(doc, dict):
        rid = doc.get("id")
        if isinstance(rid, str) and len(rid) <= 64:
            return rid
    return None
