"""Aggregated demand response: one fleet request split into per-site caps, sent over MQTT,
measured, and kept whole when sites drop out.

A request is "shed `request_w` for `duration_s`" (kind `reduce`) or "take `request_w` more"
(kind `absorb`). The split is proportional to each site's flexibility now (view.py), never
more than a site has. Each site gets the command it already accepts (docs/dr.md) on its
own topic: `hearth/<site>/cmd/dr_cap` `{"cap_w", "duration_s", "start", "event_id", "id"}`
(or `dr_absorb` with `absorb_w`); `start` is absolute, so a command applied twice or late
ends at the same time. Delivered = Σ (baseline − measured miner power) over the sites
asked, from their telemetry, the figure an aggregator is paid on.

A site **drops out** when it refuses, does not answer within `ack_timeout_s`, goes
offline, its bridge goes down or its telemetry goes stale; its share is then given to the
other sites by their remaining flexibility (new sites first, then more from those already
in). The request ends at its end time, or on `cancel()`, which clears every site's cap.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from controller.fleet.view import FleetView

log = logging.getLogger(__name__)
EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,48}$")


def split(request_w: float, flex_w: dict[str, float]) -> dict[str, float]:
    """Shares proportional to flexibility, each at most the site's flexibility."""
    total = sum(v for v in flex_w.values() if v > 0)
    if total <= 0 or request_w <= 0:
        return {}
    f = min(request_w / total, 1.0)
    return {k: v * f for k, v in sorted(flex_w.items()) if v * f > 0}


@dataclass
class Assignment:
    site_id: str
    share_w: float
    baseline_w: float
    sent_mono: float
    command_id: str
    flex_w: float = 0.0  # the site's flexibility when it was asked
    acked_mono: float | None = None
    resent_mono: float | None = None
    status: str = "sent"  # sent | acked | dropped
    reason: str = ""

    @property
    def setpoint_w(self) -> float:
        """cap (reduce) or floor (absorb) in W sent to the site."""
        return self.baseline_w - self.share_w


@dataclass
class FleetEvent:
    event_id: str
    kind: str  # reduce | absorb
    request_w: float
    start_s: float
    end_s: float
    assignments: dict[str, Assignment] = field(default_factory=dict)
    status: str = "active"
    replaced: int = 0

    def delivered_w(self, view: FleetView) -> float:
        got = 0.0
        with view.lock:
            for a in self.assignments.values():
                s = view.sites.get(a.site_id)
                p = None if s is None else s.miner_power_w()
                if p is None or s is None or s.availability == "offline":
                    continue
                d = a.baseline_w - p if self.kind == "reduce" else p - a.baseline_w
                got += max(d, 0.0)
        return got

    def summary(self, view: FleetView) -> dict[str, Any]:
        active = [a for a in self.assignments.values() if a.status != "dropped"]
        return {
            "event_id": self.event_id, "kind": self.kind, "requested_w": self.request_w,
            "start_s": self.start_s, "end_s": self.end_s, "status": self.status,
            "delivered_w": round(self.delivered_w(view), 1),
            "assigned_w": round(sum(a.share_w for a in active), 1),
            "sites": {k: {"share_w": round(a.share_w, 1), "baseline_w": round(a.baseline_w),
                          "status": a.status, "reason": a.reason,
                          "ack_ms": None if a.acked_mono is None
                          else round((a.acked_mono - a.sent_mono) * 1000, 1)}
                      for k, a in self.assignments.items()},
            "replaced": self.replaced,
        }


class Dispatcher:
    def __init__(self, view: FleetView, publish: Callable[[str, bytes], None], *,
                 stale_s: float = 30.0, ack_timeout_s: float = 3.0, resend_s: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.view = view
        self.publish = publish
        self.stale_s = stale_s
        self.ack_timeout_s = ack_timeout_s
        self.resend_s = resend_s
        self.clock = clock
        self.mono = mono
        self.event: FleetEvent | None = None

    # -- start -----------------------------------------------------------------------------

    def start(self, request_w: float, duration_s: float, kind: str = "reduce",
              event_id: str | None = None) -> FleetEvent:
        if kind not in ("reduce", "absorb"):
            raise ValueError(f"kind: {kind!r} is not reduce or absorb")
        if not request_w > 0:
            raise ValueError("request_w: must be above 0")
        if not 0 < duration_s <= 7 * 86400:
            raise ValueError("duration_s: must be above 0 and at most 7 days")
        now = self.clock()
        eid = event_id or f"fleet-{int(now)}"
        if not EVENT_ID.match(eid):
            raise ValueError("event_id: 1-48 of A-Za-z0-9_.:-")
        self.event = FleetEvent(eid, kind, request_w, now, now + duration_s)
        self._assign(request_w)
        return self.event

    def _flex(self) -> dict[str, float]:
        now = self.clock()
        i = 0 if self.event is None or self.event.kind == "reduce" else 1
        return {k: v[i] for k, v in self.view.flexibility(now, self.stale_s).items()}

    def _assign(self, missing_w: float) -> None:
        """Give `missing_w` to sites not yet in, then to those in, by flexibility."""
        ev = self.event
        assert ev is not None
        flex = self._flex()
        fresh = {k: v for k, v in flex.items() if k not in ev.assignments}
        shares = split(missing_w, fresh)
        for site, share in shares.items():
            base = self._power(site)
            ev.assignments[site] = Assignment(site, share, base, self.mono(), "",
                                              flex_w=fresh[site])
            self._send(ev.assignments[site])
        missing_w -= sum(shares.values())
        if missing_w > 1.0:  # more from the sites already in, up to what they have
            # A site already in has shed its share: what it has left is its baseline
            # (reduce) or its flexibility at the start (absorb) minus that share.
            room = {k: max((a.baseline_w if ev.kind == "reduce" else a.flex_w) - a.share_w,
                           0.0)
                    for k, a in ev.assignments.items()
                    if a.status != "dropped" and flex.get(k, 0.0) > 0}
            for site, more in split(missing_w, room).items():
                a = ev.assignments[site]
                a.share_w += more
                self._send(a)

    def _power(self, site: str) -> float:
        with self.view.lock:
            s = self.view.sites.get(site)
            p = None if s is None else s.miner_power_w()
        return p or 0.0

    def _send(self, a: Assignment) -> None:
        ev = self.event
        assert ev is not None
        a.sent_mono = self.mono()
        a.command_id = f"{ev.event_id}/{a.site_id}/{int(a.sent_mono * 1000)}"
        a.status, a.acked_mono, a.resent_mono = "sent", None, None
        self.publish(f"hearth/{a.site_id}/cmd/{self._name()}", self._body(a))

    def _name(self) -> str:
        assert self.event is not None
        return "dr_cap" if self.event.kind == "reduce" else "dr_absorb"

    def _body(self, a: Assignment) -> bytes:
        ev = self.event
        assert ev is not None
        start = datetime.fromtimestamp(ev.start_s, UTC).isoformat()
        duration = max(round(ev.end_s - ev.start_s), 1)
        body: dict[str, Any]
        if ev.kind == "reduce":
            body = {"cap_w": max(round(a.baseline_w - a.share_w), 0)}
        else:
            body = {"absorb_w": max(round(a.baseline_w + a.share_w), 1)}
        body.update({"duration_s": duration, "start": start, "event_id": ev.event_id,
                     "id": a.command_id})
        return json.dumps(body).encode()

    # -- answers and checks ----------------------------------------------------------------

    def on_answer(self, site_id: str, payload: bytes) -> None:
        ev = self.event
        if ev is None or site_id not in ev.assignments:
            return
        a = ev.assignments[site_id]
        try:
            ans = json.loads(payload)
        except ValueError:
            return
        if not isinstance(ans, dict) or ans.get("id") != a.command_id:
            return
        if ans.get("ok") is True:
            a.status, a.acked_mono = "acked", self.mono()
        else:
            self._drop(a, "refused: " + json.dumps(ans.get("errors"))[:200])

    def _drop(self, a: Assignment, reason: str) -> None:
        if a.status == "dropped":
            return
        a.status, a.reason = "dropped", reason
        log.warning("fleet DR %s: site %s dropped out (%s); its %.0f W go to others",
                    self.event.event_id if self.event else "?", a.site_id, reason, a.share_w)

    def check(self) -> dict[str, Any] | None:
        """Call about once a second: drop-outs replaced, the event ended on time."""
        ev = self.event
        if ev is None:
            return None
        if ev.status == "active" and self.clock() >= ev.end_s:
            ev.status = "ended"
        if ev.status != "active":
            return ev.summary(self.view)
        now, mono = self.clock(), self.mono()
        with self.view.lock:
            sites = dict(self.view.sites)
        for a in ev.assignments.values():
            if a.status == "dropped":
                continue
            s = sites.get(a.site_id)
            why = ""
            if s is None or not s.reachable(now, self.stale_s):
                why = "offline, bridge down or telemetry stale"
            elif a.status == "sent" and mono - a.sent_mono > self.ack_timeout_s:
                why = f"no answer within {self.ack_timeout_s:.0f} s"
            elif (a.status == "sent" and mono - (a.resent_mono or a.sent_mono) > self.resend_s):
                # Commands go at QoS 0 (docs/fleet.md): the same command again, same id.
                a.resent_mono = mono
                self.publish(f"hearth/{a.site_id}/cmd/{self._name()}", self._body(a))
            if why:
                self._drop(a, why)
        lost = ev.request_w - sum(a.share_w for a in ev.assignments.values()
                                  if a.status != "dropped")
        if lost > 1.0:
            before = len(ev.assignments)
            self._assign(lost)
            ev.replaced += len(ev.assignments) - before
        return ev.summary(self.view)

    def cancel(self) -> None:
        ev = self.event
        if ev is None:
            return
        ev.status = "cancelled"
        name, key = ("dr_cap", "cap_w") if ev.kind == "reduce" else ("dr_absorb", "absorb_w")
        for a in ev.assignments.values():
            self.publish(f"hearth/{a.site_id}/cmd/{name}",
                         json.dumps({key: None, "event_id": ev.event_id}).encode())


class DispatchService:
    """The dispatcher on the cluster: a live view, the commands out, the answers in, and
    (with a database) the event's progress in `fleet_dr_event` for the page."""

    SUBSCRIPTIONS: ClassVar[list[tuple[str, int]]] = [
        ("hearth/+/state/power", 0), ("hearth/+/state/control", 0),
        ("hearth/+/state/miners/+", 0), ("hearth/+/availability", 0),
        ("hearth/+/bridge/state", 0), ("hearth/+/fleet/info", 0),
        ("hearth/+/cmd/+/result", 0)]

    def __init__(self, cluster: Any, client_id: str = "hearth-fleet-dispatch",
                 engine: Any = None, **dispatcher_kw: Any) -> None:
        from controller.fleet.mqttlink import ClusterClient

        self.view = FleetView()
        self.engine = engine
        self.link = ClusterClient(cluster, client_id, clean_session=True,
                                  subscriptions=self.SUBSCRIPTIONS, on_message=self._on_msg)
        self.dispatcher = Dispatcher(self.view, self._publish, **dispatcher_kw)

    def _publish(self, topic: str, payload: bytes) -> None:
        # QoS 0: plain NATS delivery, no JetStream write per command; the answer is the
        # acknowledgement and the dispatcher sends again without one (check()).
        self.link.client.publish(topic, payload, qos=0)

    def _on_msg(self, m: Any, _gen: int) -> None:
        site = self.view.feed(m.topic, bytes(m.payload), bool(m.retain), time.time())
        if site is not None and m.topic.endswith("/result"):
            self.dispatcher.on_answer(site, bytes(m.payload))

    def start(self) -> DispatchService:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def fresh_sites(self, stale_s: float = 30.0) -> int:
        now = time.time()
        with self.view.lock:
            return sum(1 for s in self.view.sites.values() if s.reachable(now, stale_s))

    def save(self, summary: dict[str, Any]) -> None:
        if self.engine is None:
            return
        from controller.fleet import store

        row = {"event_id": summary["event_id"], "kind": summary["kind"],
               "requested_w": summary["requested_w"], "start_s": summary["start_s"],
               "end_s": summary["end_s"], "status": summary["status"],
               "delivered_w": summary["delivered_w"], "updated_s": time.time(),
               "sites": summary["sites"]}
        try:
            with self.engine.begin() as conn:
                store.save_dr_event(conn, row)
        except Exception:
            log.exception("fleet DR progress not saved (the event goes on)")
