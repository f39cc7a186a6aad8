"""The OpenADR 2.0b VEN: an aggregator's VTN sends events, the miners shed or absorb.

Built on openleadr's `OpenADRClient` (the 2.0b messages, XML schema checks, signatures,
TLS), with our own loop around it instead of its scheduler-driven `run()`: registration
is retried while the VTN is away (openleadr's `run()` gives up), and the poll interval
may be shorter than the whole seconds a VTN can request, because in the pull model the
poll interval *is* the latency from signal to miners.

Event mapping (docs/dr.md has the table):

| signal          | type                    | payload       | becomes                      |
| ---             | ---                     | ---           | ---                          |
| `SIMPLE`        | `level`                 | 0             | no request (normal)          |
| `SIMPLE`        | `level`                 | 1, 2, 3       | reduce: cap = level's cap W  |
| `LOAD_CONTROL`  | `x-loadControlCapacity` | 0..1 (or W)   | reduce: fraction x capacity  |
| `LOAD_DISPATCH` | `setpoint`              | W (scale k/M) | absorb: at least this        |

Each signal interval becomes one `DrEvent` with the interval's start and duration (0 =
until cancelled). Anything else is refused (opt out) with the reason logged, as is an
event whose values are out of range; a cancelled event is removed; an updated one
(new modification number) replaces the old intervals. Test events are opted in and not
applied. The VEN also offers a TELEMETRY_USAGE report of the miners' real power.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controller.config.models import SiteConfig
from controller.config.openadr import OpenAdrSection
from controller.control.types import Reading
from controller.errors import InputError, Problem
from controller.runtime.dr import DrEvent, DrSchedule, Kind
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SOURCE = "openadr"
OPT_IN = "optIn"
OPT_OUT = "optOut"
_SCALE = {"none": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3}


class Refused(Exception):
    """An event this site will not follow; the message is the reason (logged, opt out)."""


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    return d


def _seconds(x: Any) -> float:
    if isinstance(x, timedelta):
        return x.total_seconds()
    if isinstance(x, int | float):
        return float(x)
    raise Refused(f"duration {x!r} is not a duration")


def _epoch(x: Any) -> float:
    if not isinstance(x, datetime) or x.tzinfo is None:
        raise Refused(f"dtstart {x!r} is not a time with a zone")
    return x.timestamp()


class EventMapper:
    """OpenADR event (openleadr's dict) -> DR events. Pure: no I/O, no clock."""

    def __init__(self, sec: OpenAdrSection, miner_capacity_w: float,
                 power_bound_w: float = math.inf) -> None:
        self.sec = sec
        self.capacity_w = miner_capacity_w
        self.power_bound_w = power_bound_w  # SiteConfig.site_power_bound_w
        self.level_caps_w = sec.level_caps_w(miner_capacity_w)

    def _value(self, name: str, stype: str, payload: float, scale: float
               ) -> tuple[Kind, float] | None:
        """(kind, watts) for one interval's payload; None: no request in this interval."""
        if not math.isfinite(payload):
            raise Refused(f"{name}/{stype} payload {payload!r} is not a number")
        if name.upper() == "SIMPLE":
            if stype != "level":
                raise Refused(f"SIMPLE signal of type {stype!r} (only 'level')")
            if payload not in (0, 1, 2, 3):
                raise Refused(f"SIMPLE level {payload:g} is not 0, 1, 2 or 3")
            level = int(payload)
            return None if level == 0 else ("reduce", self.level_caps_w[level - 1])
        if name == "LOAD_CONTROL":
            if stype != "x-loadControlCapacity":
                raise Refused(f"LOAD_CONTROL of type {stype!r} (only x-loadControlCapacity)")
            if self.sec.load_control_capacity == "fraction":
                if not 0 <= payload <= 1:
                    raise Refused(f"x-loadControlCapacity {payload:g} is not a fraction 0..1")
                return "reduce", payload * self.capacity_w
            if payload < 0:
                raise Refused(f"x-loadControlCapacity {payload:g} W is negative")
            if payload > self.power_bound_w:
                raise Refused(f"x-loadControlCapacity {payload:g} W is above what the site "
                              f"can deliver ({self.power_bound_w:g} W)")
            return "reduce", payload
        if name == "LOAD_DISPATCH":
            if stype != "setpoint":
                raise Refused(f"LOAD_DISPATCH of type {stype!r} (only setpoint)")
            w = payload * scale
            if not 0 < w <= self.capacity_w:
                raise Refused(f"LOAD_DISPATCH setpoint {w:g} W is not within 0..the miners' "
                              f"capacity ({self.capacity_w:g} W)")
            return "absorb", w
        raise Refused(f"signal {name!r} of type {stype!r} is not supported (SIMPLE level, "
                      "LOAD_CONTROL x-loadControlCapacity, LOAD_DISPATCH setpoint)")

    def map(self, event: Mapping[str, Any], received_s: float) -> list[DrEvent]:
        """The DR events of one OpenADR event; raises Refused with the reason."""
        eid = _get(event, "event_descriptor", "event_id")
        if not isinstance(eid, str) or not eid:
            raise Refused("no event_id")
        signals = event.get("event_signals")
        if isinstance(signals, Mapping):
            signals = signals.get("event_signals")
        if not isinstance(signals, list) or not signals:
            raise Refused("no event signals")
        out: list[DrEvent] = []
        for sig in signals:
            name = str(sig.get("signal_name", ""))
            stype = str(sig.get("signal_type", ""))
            scale = _SCALE.get(str(_get(sig, "measurement", "scale") or "none"), 1.0)
            intervals = sig.get("intervals") or []
            if not intervals:
                raise Refused(f"signal {name} has no intervals")
            for i, iv in enumerate(intervals):
                payload = iv.get("signal_payload")
                if isinstance(payload, bool) or not isinstance(payload, int | float):
                    raise Refused(f"{name} interval {i}: payload {payload!r} is not a number")
                kv = self._value(name, stype, float(payload), scale)
                if kv is None:
                    continue
                start = _epoch(iv.get("dtstart"))
                dur = _seconds(iv.get("duration"))
                if dur < 0:
                    raise Refused(f"{name} interval {i}: negative duration")
                uid = iv.get("uid", i)
                ev_id = eid if len(signals) == 1 and len(intervals) == 1 else f"{eid}#{uid}"
                out.append(DrEvent(ev_id, SOURCE, kv[0], kv[1], start,
                                   None if dur == 0 else start + dur, received_s))
        return out


def _base_id(event_id: str) -> str:
    return event_id.split("#", 1)[0]


class Ven:
    """The VEN as one of the service's sources: started and stopped with them, it
    measures nothing (`readings()` is empty) and puts events into the DR schedule."""

    def __init__(self, cfg: SiteConfig, schedule: DrSchedule, base_dir: Path,
                 miner_power_w: Callable[[], float | None] | None = None,
                 utc: Callable[[], float] = time.time) -> None:
        sec = cfg.openadr
        if sec is None:
            raise InputError("openadr", [Problem("openadr", "the site has no [openadr]")])
        self.sec = sec
        self.schedule = schedule
        self.mapper = EventMapper(sec, cfg.miner_capacity_w, cfg.site_power_bound_w)
        self.miner_power_w = miner_power_w
        self.utc = utc
        paths = {}
        problems = []
        for field in ("cert_file", "key_file", "ca_file"):
            v = getattr(sec, field)
            if v is None:
                continue
            p = Path(v) if Path(v).is_absolute() else base_dir / v
            if not p.is_file():
                problems.append(Problem(f"openadr.{field}", f"{p} is not a readable file"))
            paths[field] = str(p)
        if problems:
            raise InputError("openadr", problems)
        self._paths = paths
        self.client: Any = None
        self._task: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()
        self.polls = 0
        self.accepted: list[str] = []
        self.refused: list[tuple[str, str]] = []

    # -- the source protocol ----------------------------------------------------------------

    def readings(self) -> Mapping[str, Reading | None]:
        return {}

    async def start(self) -> None:
        from openleadr import OpenADRClient  # type: ignore[import-untyped]  # untyped

        p = self._paths
        self.client = OpenADRClient(
            ven_name=self.sec.ven_name, vtn_url=self.sec.vtn_url, ven_id=self.sec.ven_id,
            cert=p.get("cert_file"), key=p.get("key_file"), ca_file=p.get("ca_file"),
            vtn_fingerprint=self.sec.vtn_fingerprint, show_fingerprint=False,
            disable_signature="cert_file" not in p)
        self.client.add_handler("on_event", self.on_event)
        self.client.add_handler("on_update_event", self.on_event)
        if self.sec.report_power and self.miner_power_w is not None:
            self.client.add_report(
                callback=self._report_power, resource_id="miners", measurement="RealPower",
                unit="W", report_specifier_id="hearth-miners",
                sampling_rate=timedelta(seconds=self.sec.report_interval_s),
                report_duration=timedelta(hours=1))
        self._task = asyncio.create_task(self._run(), name="openadr-ven")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        if self.client is not None:
            if self.client.scheduler.running:
                self.client.scheduler.shutdown(wait=False)
            if self.client.report_queue_task is not None:
                self.client.report_queue_task.cancel()
            if self.client.client_session is not None:
                await self.client.client_session.close()

    # -- the loop ---------------------------------------------------------------------------

    async def _register(self) -> bool:
        c = self.client
        res = await c.query_registration()
        request_id = _get(res[1] if isinstance(res, tuple) else {}, "response", "request_id")
        await c.create_party_registration(ven_id=c.ven_id, request_id=request_id)
        if not c.registration_id:
            log.warning("OpenADR: registration with %s failed; retrying in %g s",
                        self.sec.vtn_url, self.sec.reconnect_s)
            return False
        log.info("OpenADR: registered with %s as venID %s (registration %s)",
                 self.sec.vtn_url, c.ven_id, c.registration_id)
        c.loop = asyncio.get_running_loop()  # openleadr's re-registration path uses it
        if not c.scheduler.running:
            c.scheduler.start()  # runs the report jobs the VTN asks for
        await c.register_reports(c.reports)
        if c.reports and c.report_queue_task is None:
            c.report_queue_task = asyncio.create_task(c._report_queue_worker())
        await c.sync_events()
        self.registered.set()
        return True

    def poll_interval_s(self) -> float:
        if self.sec.poll_interval_s is not None:
            return self.sec.poll_interval_s
        freq = getattr(self.client, "poll_frequency", None)
        return freq.total_seconds() if isinstance(freq, timedelta) else 10.0

    async def _run(self) -> None:
        last_cleanup = time.monotonic()
        while True:
            wait = self.sec.reconnect_s
            try:
                if not self.client.registration_id:
                    self.registered.clear()
                    if await self._register():
                        wait = self.poll_interval_s()
                else:
                    await self.client._poll()
                    self.polls += 1
                    wait = self.poll_interval_s()
                    if time.monotonic() - last_cleanup > 300:
                        last_cleanup = time.monotonic()
                        await self.client._event_cleanup()
            except asyncio.CancelledError:
                raise
            except Exception:  # the VTN away or speaking nonsense must not end the VEN
                log.exception("OpenADR: poll failed")
            await asyncio.sleep(wait)

    # -- events ------------------------------------------------------------------------------

    async def on_event(self, event: dict[str, Any]) -> str:
        """openleadr's handler for new and updated events: 'optIn' or 'optOut'."""
        eid = str(_get(event, "event_descriptor", "event_id"))
        status = str(_get(event, "event_descriptor", "event_status") or "")
        mod = _get(event, "event_descriptor", "modification_number")
        self._cancel(eid)
        if status == "cancelled":
            log.info("OpenADR event %s (modification %s) cancelled by the VTN", eid, mod)
            return OPT_IN
        if status == "completed":
            return OPT_IN
        if _get(event, "event_descriptor", "test_event") in (True, "true"):
            log.info("OpenADR event %s is a test event: opted in, not applied", eid)
            return OPT_IN
        try:
            events = self.mapper.map(event, self.utc())
        except Refused as err:
            log.warning("OpenADR event %s refused (opted out): %s", eid, err)
            self.refused.append((eid, str(err)))
            return OPT_OUT
        now = self.utc()
        events = [e for e in events if e.end_s is None or e.end_s > now]
        for ev in events:
            self.schedule.put(ev)
        log.info("OpenADR event %s (modification %s, status %s) accepted: %s", eid, mod,
                 status, "; ".join(f"{e.kind} {e.power_w:.0f} W" for e in events)
                 or "level 0, no request")
        self.accepted.append(eid)
        return OPT_IN

    def _cancel(self, eid: str) -> None:
        for ev in self.schedule.events():
            if ev.source == SOURCE and _base_id(ev.event_id) == eid:
                self.schedule.cancel(SOURCE, ev.event_id)

    def _report_power(self) -> float | None:
        return None if self.miner_power_w is None else self.miner_power_w()
