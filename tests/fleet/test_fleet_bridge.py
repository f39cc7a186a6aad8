"""A real site Mosquitto bridged (TLS, its own account) into a 3-node NATS cluster, with
the bridge config made by `hearth fleet bridge-config`; store-and-forward through a
cluster outage; DR commands come in; installer traffic stays home."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import brokerkit
import pytest
import sqlalchemy as sa
from fleetkit import NatsCluster, interval_row, mqtt_client, wait

from controller.cli import main
from controller.fleet import store
from controller.fleet.cluster import Tls
from controller.fleet.ingest import Ingest
from controller.fleet.mqttlink import ClusterSettings
from controller.fleet.rows import encode_row

ACCOUNTS = {"s1": "pw-s1", "ingest": "pw-ingest", "dispatch": "pw-dispatch"}
JAN = 1767225600


def scalar(url: str, sql: str) -> Any:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        eng.dispose()


HOUSE = Path(__file__).resolve().parents[2] / "hil" / "sites" / "house-10kwp.toml"
SITE_TOML = HOUSE.read_text().replace('id = "demo-house"', 'id = "s1"') + """
[mqtt]
host = "127.0.0.1"
port = 1883
username = "hearth"
password_file = "mqtt.pw"
"""


def test_bridge_config_cli_refuses_and_writes_0600(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE_TOML)
    (tmp_path / "mqtt.pw").write_text("pw\n")
    (tmp_path / "cl.pw").write_text("pw-s1\n")
    out = tmp_path / "fleet.conf"
    assert main(["fleet", "bridge-config", "--config", str(site), "--cluster",
                 "10.0.0.1:8883,10.0.0.2:8883", "--password-file", str(tmp_path / "cl.pw"),
                 "--output", str(out)]) == 0
    text = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    assert "address 10.0.0.1:8883 10.0.0.2:8883" in text
    assert "remote_username s1" in text and "cleansession false" in text
    assert "topic ledger/# out 1 hearth/s1/ hearth/s1/" in text
    assert "topic cmd/dr_cap in 0 hearth/s1/ hearth/s1/" in text
    assert "bridge_outgoing_retain false" in text
    assert "config/" not in text.split("notification_topic")[1]
    assert main(["fleet", "bridge-config", "--config", str(site), "--cluster", "nohost",
                 "--password-file", str(tmp_path / "cl.pw")]) == 2
    assert "--cluster" in capsys.readouterr().err


@pytest.mark.slow(20)
def test_real_mosquitto_bridge_store_and_forward_tls(tmp_path: Path, pg_url: str) -> None:
    pki = brokerkit.Pki.create(tmp_path / "pki")
    cluster = NatsCluster(tmp_path, ACCOUNTS, tls=Tls(pki.server_cert, pki.server_key))
    cluster.start()
    ing: Ingest | None = None
    try:
        site_file = tmp_path / "site.toml"
        site_file.write_text(SITE_TOML)
        (tmp_path / "mqtt.pw").write_text("pw\n")
        (tmp_path / "cl.pw").write_text("pw-s1\n")
        conf = tmp_path / "bridge.conf"
        nodes = ",".join(f"127.0.0.1:{p}" for p in cluster.mqtt_ports)
        assert main(["fleet", "bridge-config", "--config", str(site_file), "--cluster", nodes,
                     "--password-file", str(tmp_path / "cl.pw"), "--ca-file",
                     str(pki.ca_file), "--output", str(conf)]) == 0
        eng = store.make_fleet_engine(pg_url)
        ing = Ingest(eng, ClusterSettings(tuple(("127.0.0.1", p) for p in cluster.mqtt_ports),
                                          "ingest", "pw-ingest", ca_file=pki.ca_file)).start()
        assert ing.link.subscribed.wait(20)
        with brokerkit.Broker(tmp_path / "site", users={"hearth": "pw"},
                              extra_conf=conf.read_text()) as site:
            local = mqtt_client(site.port, "hearth", "pw", "hearth-s1")

            def send(starts: range) -> None:
                for s in starts:
                    local.publish("hearth/s1/ledger/interval",  # type: ignore[attr-defined]
                                  encode_row(interval_row(JAN + 900 * s), "interval"),
                                  qos=1).wait_for_publish(5)

            send(range(0, 5))
            local.publish("hearth/s1/config/set", "{}", qos=1)  # type: ignore[attr-defined]
            wait(lambda: scalar(pg_url, "SELECT count(*) FROM fleet_interval") == 5, 30,
                 "5 intervals through the bridge")
            wait(lambda: scalar(pg_url, "SELECT bridge FROM fleet_site") == "1", 10,
                 "the bridge's own state")
            # The fleet's DR command reaches the site's broker; a command nobody may send
            # from the cluster (another site's topic, or mode) does not.
            got: list[tuple[str, bytes]] = []
            seen = threading.Event()

            def on_msg(_c: object, _u: object, m: Any) -> None:
                got.append((m.topic, m.payload))
                seen.set()

            local.on_message = on_msg  # type: ignore[attr-defined]
            local.subscribe("hearth/s1/cmd/#", qos=1)  # type: ignore[attr-defined]
            disp = mqtt_client(cluster.mqtt_ports[2], "dispatch", "pw-dispatch", "disp",
                               ca_file=pki.ca_file)
            wait(lambda: _publish_until(disp, seen), 15, "a DR command through the bridge")
            assert got[0][0] == "hearth/s1/cmd/dr_cap"
            assert json.loads(got[0][1])["cap_w"] == 0

            # The cluster goes away: the site keeps its rows and sends them when it is back.
            cluster.stop()
            send(range(5, 12))
            for i in range(3):
                cluster.start_node(i, wait=False)
            wait(lambda: scalar(pg_url, "SELECT count(*) FROM fleet_interval") == 12, 60,
                 "the rows queued during the outage")
            assert scalar(pg_url, "SELECT count(DISTINCT start_s) FROM fleet_interval") == 12
            assert "config" not in json.dumps(scalar(
                pg_url, "SELECT state FROM fleet_site WHERE site_id = 's1'"))
            assert scalar(pg_url, "SELECT count(*) FROM fleet_refused") == 0
            disp.disconnect()  # type: ignore[attr-defined]
            local.disconnect()  # type: ignore[attr-defined]
    finally:
        if ing is not None:
            ing.stop()
        cluster.stop()


def _publish_until(client: Any, seen: threading.Event) -> bool:
    client.publish("hearth/s1/cmd/dr_cap", json.dumps({"cap_w": 0, "duration_s": 60}), qos=1)
    return seen.wait(1.0)


@pytest.mark.parametrize("argv, field", [
    (["dispatch", "--cluster", "h:1", "--shed-kw", "0", "--minutes", "5"], "--shed-kw"),
    (["dispatch", "--cluster", "h:1", "--shed-kw", "5", "--minutes", "0"], "--minutes"),
    (["dispatch", "--cluster", "nohost", "--shed-kw", "5", "--minutes", "5"], "--cluster"),
    (["ingest", "--cluster", "h:1", "--db", "sqlite:///x.db"], "--db"),
    (["serve", "--db", "sqlite:///x.db"], "--db"),
])
def test_fleet_cli_refuses_bad_arguments(argv: list[str], field: str,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_FLEET_PASSWORD", "pw")
    assert main(["fleet", *argv]) == 2
    assert field in capsys.readouterr().err
