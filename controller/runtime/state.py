"""Controller state that must survive a restart: each miner's on/off and when it switched.

A Raspberry Pi has no real-time clock, and the monotonic clock restarts at boot, so times
are stored as UTC and turned back into monotonic seconds on load. If the wall clock is not
plausible (before the saved time), every miner is treated as having switched just now:
minimum on/off times then restart, the safe side of the uncertainty.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.control.allocator import Allocator

log = logging.getLogger(__name__)
VERSION = 1


def export_state(alloc: Allocator, now_s: float, now_utc: datetime) -> dict[str, Any]:
    miners = {}
    for name, st in alloc.state.items():
        since = None
        if st.switched_at_s != float("-inf"):
            since = (now_utc.timestamp() - (now_s - st.switched_at_s))
        miners[name] = {"running": st.running, "switched_at_utc": since,
                        "target_w": st.target_w}
    return {"version": VERSION, "saved_at_utc": now_utc.timestamp(), "miners": miners}


def import_state(alloc: Allocator, data: dict[str, Any], now_s: float, now_utc: datetime
                 ) -> None:
    if data.get("version") != VERSION:
        log.warning("state file version %r not %r: starting fresh", data.get("version"), VERSION)
        return
    saved = float(data.get("saved_at_utc", 0.0))
    clock_ok = now_utc.timestamp() >= saved
    if not clock_ok:
        log.warning("wall clock (%s) is before the last save: minimum on/off times restart",
                    now_utc.isoformat())
    for name, m in data.get("miners", {}).items():
        st = alloc.state.get(name)
        if st is None:
            log.info("state for miner %r ignored: not in the configuration", name)
            continue
        st.running = bool(m.get("running", False))
        st.target_w = float(m.get("target_w", 0.0))
        since = m.get("switched_at_utc")
        if since is None:
            continue
        elapsed = now_utc.timestamp() - float(since) if clock_ok else 0.0
        st.switched_at_s = now_s - max(elapsed, 0.0)


def save(path: Path, data: dict[str, Any]) -> None:
    """Atomic: write a temporary file, fsync, rename (an SD card may lose power any time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("state file %s unreadable (%s): starting fresh", path, err)
        return None
    return data if isinstance(data, dict) else None


def utc_now() -> datetime:
    return datetime.now(UTC)
