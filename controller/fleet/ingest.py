"""`hearth fleet ingest`: everything the sites send, from the cluster into PostgreSQL.

One persistent MQTT session (clean session off, QoS 1) on `hearth/#`. Messages are taken in
batches (up to `batch_max` or `batch_s`), written in one transaction, and only then
acknowledged (paho's manual ack): a crash before the commit leaves them unacknowledged and
the cluster delivers them again; a crash after the commit but before the ack delivers rows
that are already there, and the insert of a row whose key (site, interval[, rev]) exists
does nothing. So a ledger interval is neither lost nor counted twice.

| topic | goes to |
| --- | --- |
| `hearth/<site>/ledger/interval` | `fleet_interval` (closed ledger intervals, QoS 1) |
| `hearth/<site>/ledger/telemetry` | `fleet_telemetry` (the ledger's telemetry steps, QoS 1) |
| `hearth/<site>/state/<name>` | `fleet_site.state[<name>]` (latest; empty payload removes) |
| `hearth/<site>/availability` | `fleet_site.availability` (the site's Last Will) |
| `hearth/<site>/bridge/state` | `fleet_site.bridge` (the site bridge's own notification, 1/0) |
| `hearth/<site>/fleet/info` | `fleet_site.info` (capacity, limits, wall-page link) |

Anything refused (bad topic, bad JSON, a row with a wrong field) is logged with the field
and the reason, stored in `fleet_refused`, and acknowledged: a message that can never be
read must not block the ones behind it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import Engine

from controller.fleet import store
from controller.fleet.mqttlink import ClusterClient, ClusterSettings
from controller.fleet.rows import SITE_ID, RowError, decode_row

log = logging.getLogger(__name__)

MAX_STATE_BYTES = 65536


@dataclass
class Parsed:
    """One batch, sorted by destination."""

    intervals: list[dict[str, Any]] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    sites: dict[str, store.SiteUpdate] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def site(self, site_id: str) -> store.SiteUpdate:
        u = self.sites.get(site_id)
        if u is None:
            u = self.sites[site_id] = store.SiteUpdate(site_id)
        return u


def _json_object(payload: bytes, limit: int = MAX_STATE_BYTES) -> dict[str, Any]:
    if len(payload) > limit:
        raise RowError("payload", f"larger than {limit} bytes")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RowError("payload", f"not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise RowError("payload", "must be a JSON object")
    return obj


def parse_into(batch: Parsed, topic: str, payload: bytes, retained: bool,
               now_s: float) -> None:
    """Sort one message into the batch; a refusal is recorded with field and reason."""
    parts = topic.split("/")
    site_id = parts[1] if len(parts) > 2 and parts[0] == "hearth" else None
    try:
        if site_id is None or not SITE_ID.match(site_id):
            raise RowError("topic", "not hearth/<site id>/...")
        rest = "/".join(parts[2:])
        if rest in ("ledger/interval", "ledger/telemetry"):
            row = decode_row(payload, rest.split("/")[1])
            row["site_id"] = site_id
            if rest == "ledger/interval":
                row["ingested_at_s"] = int(now_s)
                batch.intervals.append(row)
            else:
                batch.telemetry.append(row)
            batch.site(site_id).last_seen_s = now_s
            return
        u = batch.site(site_id)
        if not retained:
            u.last_seen_s = now_s
        if rest == "availability":
            value = payload.decode("utf-8", "replace")
            if value not in ("online", "offline"):
                raise RowError("payload", "availability must be 'online' or 'offline'")
            u.availability = value
        elif rest == "bridge/state":
            value = payload.decode("utf-8", "replace")
            if value not in ("0", "1"):
                raise RowError("payload", "bridge state must be '0' or '1'")
            u.bridge = value
        elif rest == "fleet/info":
            u.info = _json_object(payload)
        elif rest.startswith("state/") and len(parts) >= 4:
            name = "/".join(parts[3:])
            if not payload:  # a retained message deleted
                u.state.pop(name, None)
                u.removed.add(name)
                return
            obj = _json_object(payload)
            obj["_at_s"] = None if retained else now_s
            u.state[name] = obj
            u.removed.discard(name)
        # cmd/, config/, reply/, sat/: not the fleet's records
    except RowError as exc:
        log.warning("refused %s: %s: %s", topic, exc.field, exc.reason)
        batch.refused.append({"at_s": now_s, "site_id": site_id, "topic": topic[:500],
                              "field": exc.field, "reason": exc.reason,
                              "payload": payload[:2000].decode("utf-8", "replace")})


class Ingest:
    """The ingest service: a cluster session feeding a batch writer thread."""

    def __init__(self, engine: Engine, cluster: ClusterSettings,
                 client_id: str = "hearth-fleet-ingest", batch_max: int = 1000,
                 batch_s: float = 0.25) -> None:
        self.engine = engine
        self.batch_max = batch_max
        self.batch_s = batch_s
        self.parts = store.Partitions()
        self.intervals_added = 0
        self.telemetry_added = 0
        self.messages = 0
        self.refused = 0
        self._q: queue.Queue[tuple[int, mqtt.MQTTMessage] | None] = queue.Queue()
        self._stop = threading.Event()
        store.ensure_schema(engine)
        self.link = ClusterClient(cluster, client_id, clean_session=False,
                                  subscriptions=[("hearth/#", 1)],
                                  on_message=lambda m, g: self._q.put((g, m)),
                                  manual_ack=True)
        self._thread = threading.Thread(target=self._work, name="fleet-ingest", daemon=True)

    def start(self) -> Ingest:
        self._thread.start()
        self.link.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._q.put(None)
        self._thread.join(30)
        self.link.stop()

    def _take(self) -> list[tuple[int, mqtt.MQTTMessage]] | None:
        first = self._q.get()
        if first is None:
            return None
        got = [first]
        deadline = time.monotonic() + self.batch_s
        while len(got) < self.batch_max:
            try:
                item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self._q.put(None)
                break
            got.append(item)
        return got

    def _work(self) -> None:
        while not self._stop.is_set():
            got = self._take()
            if got is None:
                return
            while not self._stop.is_set():
                try:
                    self._write(got)
                    break
                except Exception:
                    # Not acknowledged: nothing is lost, the batch is tried again.
                    log.exception("fleet database write failed; retrying in 2 s")
                    time.sleep(2)

    def _write(self, got: list[tuple[int, mqtt.MQTTMessage]]) -> None:
        now = time.time()
        batch = Parsed()
        for _g, m in got:
            parse_into(batch, m.topic, bytes(m.payload), bool(m.retain), now)
        with self.engine.begin() as conn:
            added_i = store.insert_rows(conn, store.fleet_interval, batch.intervals, self.parts)
            added_t = store.insert_rows(conn, store.fleet_telemetry, batch.telemetry,
                                        self.parts)
            store.upsert_sites(conn, batch.sites.values())
            store.record_refused(conn, batch.refused)
        self.intervals_added += added_i
        self.telemetry_added += added_t
        self.messages += len(got)
        self.refused += len(batch.refused)
        gen = self.link.generation
        for g, m in got:
            # An ack belongs to the connection that delivered the message; after a
            # reconnect the cluster delivers the unacknowledged ones again.
            if m.qos > 0 and g == gen:
                self.link.client.ack(m.mid, m.qos)
