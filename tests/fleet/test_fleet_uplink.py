"""The site's uplink: closed rows from a real site ledger (SQLite, written by the live
writer) onto the site's own Mosquitto, once each, in the fleet's row format."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import brokerkit
from fleetkit import mqtt_client, wait

from controller.config import load_site
from controller.economics.hashprice import network_terms
from controller.fleet.rows import decode_row
from controller.fleet.uplink import Uplink
from controller.ledger.accumulate import Sample
from controller.ledger.query import Ledger
from controller.ledger.writer import open_site_writer

HOUSE = Path(__file__).resolve().parents[2] / "hil" / "sites" / "house-10kwp.toml"
T0 = 1767261600  # 2026-01-01T10:00:00Z


def test_uplink_publishes_each_closed_row_once(tmp_path: Path) -> None:
    with brokerkit.Broker(tmp_path, users={"hearth": "pw"}) as broker:
        site = tmp_path / "site.toml"
        site.write_text(HOUSE.read_text().replace('id = "demo-house"', 'id = "s1"') + f"""
[ledger]
database_url = "sqlite:///{tmp_path}/ledger.sqlite3"
flush_interval_s = 120
[mqtt]
host = "127.0.0.1"
port = {broker.port}
username = "hearth"
password_file = "mqtt.pw"
""")
        (tmp_path / "mqtt.pw").write_text("pw\n")
        cfg = load_site(site)
        b = cfg.bitcoin
        terms = network_terms(b.network_difficulty, b.block_subsidy_btc,
                              b.fees_per_block_btc, b.btc_price, b.pool_fee_pct)
        w = open_site_writer(cfg)
        for k in range(0, 1200, 5):  # 20 min of 5-s samples: one interval closes
            w.add(Sample.from_meters(T0 + k, 5.0, pv_w=3000.0, grid_w=-500.0, battery_w=0.0,
                                     miner_w=1000.0, hashrate_ths=12.0,
                                     import_price=Decimal("0.3"),
                                     export_price=Decimal("0.05"), btc=terms))
        w.close()
        got: list[tuple[str, bytes]] = []
        sub = mqtt_client(broker.port, "hearth", "pw", "watcher")
        ready = threading.Event()
        sub.on_subscribe = lambda *_a: ready.set()  # type: ignore[attr-defined]
        sub.on_message = lambda _c, _u, m: got.append(  # type: ignore[attr-defined]
            (m.topic, bytes(m.payload)))
        sub.subscribe("hearth/s1/#", qos=1)  # type: ignore[attr-defined]
        assert ready.wait(5)
        up = Uplink(cfg, site, hmi_url="http://house.lan:8080/")
        up.client.loop_start()
        try:
            up.publish_info()
            led = Ledger.open(cfg.ledger.url, "s1")
            n_tel = len(led.telemetry(T0, T0 + 1300))
            led.close()
            assert n_tel >= 15
            assert up.poll_once(now_s=T0 + 1300) == 1 + n_tel  # the closed interval + steps
            assert up.poll_once(now_s=T0 + 1300) == 0          # nothing twice
            wait(lambda: len(got) >= 2 + n_tel, 10, "the rows on the site's broker")
        finally:
            up.client.disconnect()
            up.client.loop_stop()
            sub.disconnect()  # type: ignore[attr-defined]
        by: dict[str, list[Any]] = {}
        for topic, payload in got:
            by.setdefault(topic, []).append(payload)
        (interval,) = [decode_row(p, "interval") for p in by["hearth/s1/ledger/interval"]]
        assert interval["start_s"] == T0 and interval["covered_s"] == 900
        assert interval["miner_kwh"] == Decimal("0.25")
        assert len(by["hearth/s1/ledger/telemetry"]) == n_tel
        info = json.loads(by["hearth/s1/fleet/info"][0])
        assert info["hmi_url"] == "http://house.lan:8080/"
        assert set(info["miners"]) == {m.name for m in cfg.miners}
