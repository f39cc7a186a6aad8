"""Ingest: a real 3-node NATS cluster (MQTT + JetStream) into a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fleetkit import NatsCluster, interval_row, mqtt_client, telemetry_row, wait

from controller.fleet import store
from controller.fleet.ingest import Ingest
from controller.fleet.mqttlink import ClusterSettings
from controller.fleet.rows import RowError, decode_row, encode_row

ACCOUNTS = {"s1": "pw-s1", "s2": "pw-s2", "ingest": "pw-ingest", "dispatch": "pw-dispatch"}
JAN = 1767225600  # 2026-01-01T00:00:00Z
FEB = 1769904000  # 2026-02-01T00:00:00Z


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path, ACCOUNTS) as cl:
        yield cl


def settings(cl: NatsCluster, user: str = "ingest") -> ClusterSettings:
    return ClusterSettings(tuple(("127.0.0.1", p) for p in cl.mqtt_ports), user,
                           ACCOUNTS[user])


def count(url: str, sql: str) -> Any:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        eng.dispose()


def test_row_wire_format_round_trips_and_refuses_with_the_field() -> None:
    row = interval_row(JAN)
    back = decode_row(encode_row(row, "interval"), "interval")
    assert back["net"] == row["net"] and back["expected_msat"] == 6843
    bad = json.loads(encode_row(row, "interval"))
    for change, field in [({"net": 0.1}, "net"), ({"net": "0.0000001"}, "net"),
                          ({"bogus": 1}, "bogus"), ({"expected_msat": "5"}, "expected_msat"),
                          ({"duration_s": 0}, "duration_s")]:
        with pytest.raises(RowError) as e:
            decode_row(json.dumps({**bad, **change}).encode(), "interval")
        assert e.value.field == field
    del bad["miner_kwh"]
    with pytest.raises(RowError, match="miner_kwh: missing"):
        decode_row(json.dumps(bad).encode(), "interval")


def test_ingest_is_idempotent_partitioned_and_refuses_bad_rows(
        cluster: NatsCluster, pg_url: str) -> None:
    eng = store.make_fleet_engine(pg_url)
    ing = Ingest(eng, settings(cluster)).start()
    try:
        assert ing.link.subscribed.wait(20)
        site = mqtt_client(cluster.mqtt_ports[1], "s1", "pw-s1", "site-s1")
        rows = [interval_row(JAN + 900 * i) for i in range(3)] + [interval_row(FEB)]
        infos = []
        for r in [*rows, rows[0], rows[1]]:  # two redeliveries
            infos.append(site.publish("hearth/s1/ledger/interval",  # type: ignore[attr-defined]
                                      encode_row(r, "interval"), qos=1))
        infos.append(site.publish("hearth/s1/ledger/telemetry",  # type: ignore[attr-defined]
                                  encode_row(telemetry_row(JAN), "telemetry"), qos=1))
        infos.append(site.publish("hearth/s1/state/power", json.dumps(  # type: ignore[attr-defined]
            {"grid_power_w": -900, "miner_power_w": 1400}), qos=0))
        bad = json.loads(encode_row(interval_row(JAN + 9000), "interval"))
        bad["net"] = 1.5
        infos.append(site.publish("hearth/s1/ledger/interval",  # type: ignore[attr-defined]
                                  json.dumps(bad), qos=1))
        # Not its own id: the cluster drops it (ACL), it never reaches the database.
        infos.append(site.publish("hearth/s2/ledger/interval",  # type: ignore[attr-defined]
                                  encode_row(interval_row(JAN), "interval"), qos=1))
        for i in infos:
            i.wait_for_publish(10)
        wait(lambda: count(pg_url, "SELECT count(*) FROM fleet_refused") >= 1
             and count(pg_url, "SELECT count(*) FROM fleet_interval") >= 4
             and count(pg_url, "SELECT count(*) FROM fleet_telemetry") >= 1, 20,
             "rows in PostgreSQL")
        wait(lambda: ing.messages >= 9, 10, "every message through ingest")
        assert count(pg_url, "SELECT count(*) FROM fleet_interval") == 4
        assert count(pg_url, "SELECT count(*) FROM fleet_interval WHERE site_id='s2'") == 0
        assert count(pg_url, "SELECT sum(net) FROM fleet_interval") == 4 * 12345
        parts = count(pg_url, "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM "
                      "pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p "
                      "ON p.oid = i.inhparent WHERE p.relname = 'fleet_interval'")
        assert parts == "fleet_interval_202601,fleet_interval_202602"
        assert count(pg_url, "SELECT field || ': ' || reason FROM fleet_refused") == \
            "net: must be a decimal string"
        assert count(pg_url, "SELECT state->'power'->>'miner_power_w' FROM fleet_site "
                     "WHERE site_id='s1'") == "1400"
        site.disconnect()  # type: ignore[attr-defined]
    finally:
        ing.stop()
        eng.dispose()
