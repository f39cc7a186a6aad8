"""`cmd/bitcoin_terms` and `state/bitcoin` against a real Mosquitto (password file and the
ACL from deploy/mosquitto), wired as in `hearth run`: the bridge's command sink is the
service's tap, which hands the terms to the bitcoin terms feed (controller/runtime/market.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import brokerkit
import pytest
from mqtt_testkit import ACL_TEXT, SITE, TIMEOUT_S, USERS, client, reply_topic, site_doc, write_site

from controller.bridge import Bridge, ConfigStore
from controller.bridge.commands import CommandQueue
from controller.bridge.service_glue import BridgePublisher
from controller.control.overrides import NO_OVERRIDES
from controller.control.types import Commands, Measurements
from controller.runtime.market import CACHE_NAME, BitcoinTermsFeed
from controller.runtime.ports import TickRecord
from controller.runtime.price_commands import PriceCommandTap
from controller.runtime.prices import PriceFeed

BASE = f"hearth/{SITE}"
TOPIC = f"{BASE}/cmd/bitcoin_terms"
GOOD = {"difficulty": 149301205959699.88, "reward_sats": 315_123_456, "btc_price": 81250.5,
        "currency": "EUR"}


class Site:
    """The bridge with the service's command tap in front of a real terms feed."""

    def __init__(self, tmp_path: Path, broker: brokerkit.Broker) -> None:
        self.path = write_site(tmp_path / "site", site_doc(broker))
        store = ConfigStore(self.path)
        self.cfg = store.config
        self.data = tmp_path / "data"
        self.feed = BitcoinTermsFeed(self.cfg, self.data)
        self.queue = CommandQueue()
        tap = PriceCommandTap(self.queue, PriceFeed(self.cfg).set_series, self.feed.accept)
        self.bridge = Bridge(store, tap)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[brokerkit.Broker, Site]]:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as broker:
        s = Site(tmp_path, broker)
        s.bridge.start()
        assert s.bridge.wait_connected(TIMEOUT_S)
        try:
            yield broker, s
        finally:
            s.bridge.stop()


@pytest.mark.parametrize("user", ["installer", "homeassistant"])
def test_pushed_terms_are_applied_answered_and_kept(
        site: tuple[brokerkit.Broker, Site], user: str) -> None:
    broker, s = site
    assert s.feed.status().source == "config"
    c = client(broker, user)
    reply = reply_topic(BASE, user)
    c.subscribe(reply)
    ans = c.request(TOPIC, json.dumps({**GOOD, "id": "t1"}).encode(), reply, b"corr").json()
    assert ans["ok"] is True and ans["id"] == "t1" and ans["command"] == "bitcoin_terms"
    applied = ans["applied"]["terms"]
    assert (applied["difficulty"], applied["reward_sats"], applied["btc_price"]) == (
        "149301205959699.88", 315_123_456, "81250.5")
    assert applied["source"] == "mqtt"
    st = s.feed.status()
    assert st.source == "mqtt" and st.terms.btc_price == Decimal("81250.5")
    assert st.terms.difficulty == Decimal("149301205959699.88")
    assert s.queue.drain() == []  # not an override: it went to the feed
    # Kept on disk: a restarted service has them.
    again = BitcoinTermsFeed(s.cfg, s.data)
    assert again.status().source == "mqtt" and (s.data / CACHE_NAME).exists()
    c.close()


def _field_reason(ans: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["reason"]) for e in ans["errors"]]


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"currency": "USD"}, "currency", "must be the site currency EUR"),
    ({"difficulty": 0}, "difficulty", "greater than 0"),
    ({"difficulty": 1e19}, "difficulty", "less than or equal to 1000000000000000000"),
    ({"difficulty": "1.4e14"}, "difficulty", "valid number"),
    ({"reward_sats": 3.5}, "reward_sats", "valid integer"),
    ({"reward_sats": -1}, "reward_sats", "greater than 0"),
    ({"reward_sats": 20_000_000_000}, "reward_sats", "less than or equal to 10000000000"),
    ({"btc_price": True}, "btc_price", "valid number"),
    ({"btc_price": 1e11}, "btc_price", "less than or equal to 10000000000"),
    ({"btc_price": -5}, "btc_price", "greater than 0"),
    ({"as_of": "2020-01-01T00:00:00Z"}, "as_of", "would be stale at once"),
    ({"as_of": "2999-01-01T00:00:00+01:00"}, "as_of", "in the future"),
    ({"as_of": "yesterday"}, "as_of", "not an ISO 8601 time"),
    ({"as_of": "2026-01-01T00:00:00"}, "as_of", "needs a UTC offset"),
    ({"fees_btc": 0.1}, "fees_btc", "unknown key"),
])
def test_bad_terms_are_refused_naming_field_and_bound_and_nothing_applied(
        site: tuple[brokerkit.Broker, Site], change: dict[str, Any], field: str,
        reason: str) -> None:
    broker, s = site
    ha = client(broker, "homeassistant")
    reply = reply_topic(BASE, "homeassistant")
    ha.subscribe(reply)
    ans = ha.request(TOPIC, json.dumps({**GOOD, **change}).encode(), reply, b"x").json()
    assert ans["ok"] is False, ans
    assert any(f == field and reason in r for f, r in _field_reason(ans)), ans
    assert s.feed.accepted == 0 and s.feed.status().source == "config"
    assert not (s.data / CACHE_NAME).exists()
    ha.close()


def test_every_bad_field_is_named_at_once(site: tuple[brokerkit.Broker, Site]) -> None:
    broker, s = site
    ha = client(broker, "homeassistant")
    reply = reply_topic(BASE, "homeassistant")
    ha.subscribe(reply)
    ans = ha.request(TOPIC, json.dumps({"difficulty": -1, "reward_sats": 0, "btc_price": 0,
                                        "currency": "EUR"}).encode(), reply, b"x").json()
    assert {f for f, _ in _field_reason(ans)} == {"difficulty", "reward_sats", "btc_price"}
    assert s.feed.accepted == 0
    ha.close()


def test_a_bad_response_topic_is_refused_before_anything_is_applied(
        site: tuple[brokerkit.Broker, Site]) -> None:
    broker, s = site
    inst = client(broker, "installer")
    inst.subscribe(f"{TOPIC}/result")
    mark = inst.mark()
    inst.publish(TOPIC, json.dumps(GOOD).encode(), response_topic=f"{BASE}/reply/installer/#",
                 correlation=b"c")
    ans = inst.wait_for(f"{TOPIC}/result", after=mark).json()
    assert ans["ok"] is False and ans["errors"][0]["field"] == "response_topic"
    assert s.feed.accepted == 0 and s.feed.status().source == "config"
    inst.close()


def test_a_retained_push_is_refused_and_deleted(site: tuple[brokerkit.Broker, Site]) -> None:
    broker, s = site
    inst = client(broker, "installer")
    inst.subscribe(f"{TOPIC}/result")
    inst.publish(TOPIC, json.dumps(GOOD).encode(), retain=True)
    ans = inst.wait_for(f"{TOPIC}/result").json()
    assert ans["ok"] is False and ans["errors"][0]["field"] == "retain"
    assert s.feed.accepted == 0
    inst.close()


def test_the_installer_may_push_terms_but_no_other_command(
        site: tuple[brokerkit.Broker, Site]) -> None:
    broker, s = site
    inst = client(broker, "installer")
    rc = inst.publish(f"{BASE}/cmd/pause_all", b'{"paused": true}')
    assert rc is not None and rc.value == 0x87  # not authorized (ACL)
    rc = inst.publish(f"{BASE}/cmd/bitcoin_terms_x", json.dumps(GOOD).encode())
    assert rc is not None and rc.value == 0x87
    reply = reply_topic(BASE, "installer")
    inst.subscribe(reply)
    assert inst.request(TOPIC, json.dumps(GOOD).encode(), reply, b"ok").json()["ok"]
    assert s.queue.drain() == [] and s.feed.accepted == 1
    inst.close()


def test_state_bitcoin_says_where_the_terms_come_from(
        site: tuple[brokerkit.Broker, Site]) -> None:
    broker, s = site
    ha = client(broker, "homeassistant")
    ha.subscribe(f"{BASE}/state/bitcoin")
    pub = BridgePublisher(s.bridge)

    def tick() -> None:
        st = s.feed.status()
        pub.publish(TickRecord(datetime.now(UTC), time.monotonic(), Measurements(),
                               Commands((), 0.0, "grid", None, ()), NO_OVERRIDES, None, 0.0,
                               st))

    tick()
    first = ha.wait_for(f"{BASE}/state/bitcoin").json()
    assert first["source"] == "config" and first["stale"] is False
    assert "no live terms" in first["fallback_reason"]
    assert first["btc_price"] == str(s.cfg.bitcoin.btc_price) and first["currency"] == "EUR"
    reply = reply_topic(BASE, "homeassistant")
    ha.subscribe(reply)
    assert ha.request(TOPIC, json.dumps(GOOD).encode(), reply, b"c").json()["ok"]
    deadline = time.monotonic() + TIMEOUT_S
    got: dict[str, Any] = {}
    while got.get("source") != "mqtt":
        assert time.monotonic() < deadline, "state/bitcoin never said mqtt"
        tick()  # the rate limit lets a changed payload out after telemetry_interval_s
        try:
            got = ha.wait_for(f"{BASE}/state/bitcoin", lambda m: m.json()["source"] == "mqtt",
                              timeout_s=0.5).json()
        except AssertionError:
            continue
    assert got["btc_price"] == "81250.5"
    assert got["fallback_reason"] is None and got["live_source"] == "mqtt"
    ha.close()


def test_hearth_run_fetches_publishes_and_restarts_from_its_cache(tmp_path: Path) -> None:
    """The real `hearth run` process, its feed against the emulated mempool.space API over
    HTTP: state/bitcoin says `feed` with the API's figures; restarted while the API hangs,
    it starts from the terms it kept on disk (and logs the hang)."""
    import os
    import signal
    import subprocess
    import sys

    from hil.market.mempool import MempoolEmulator

    root = Path(__file__).resolve().parents[2]
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as broker, \
            MempoolEmulator() as api:
        doc = site_doc(broker)
        doc["bitcoin"] = {**doc["bitcoin"], "feed": {
            "enabled": True, "url": api.url, "refresh_s": 60, "stale_after_s": 300,
            "timeout_s": 1.0}}
        doc["hmi"] = {"enabled": False}
        doc["ledger"] = {"enabled": False}
        doc["service"] = {"data_dir": str(tmp_path / "data"), "start_delay_max_s": 0}
        path = write_site(tmp_path / "site", doc)
        ha = client(broker, "homeassistant")
        ha.subscribe(f"{BASE}/state/bitcoin")

        def run(name: str) -> tuple[subprocess.Popen[bytes], Path]:
            log = tmp_path / f"{name}.log"
            proc = subprocess.Popen(
                [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run",
                 "--config", str(path)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            return proc, log

        def stop(proc: subprocess.Popen[bytes]) -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)

        proc, log = run("first")
        try:
            mark = ha.mark()
            got = ha.wait_for(f"{BASE}/state/bitcoin", lambda m: m.json()["source"] == "feed",
                              60, after=mark).json()
            assert (got["btc_price"], got["difficulty"]) == ("40545", "31251101365711.12")
            assert got["stale"] is False and got["fallback_reason"] is None
            assert api.hits["prices"] >= 1
        finally:
            stop(proc)
        assert "bitcoin terms from feed" in log.read_text()
        api.fault("*", "hang")
        proc, log = run("second")
        try:
            mark = ha.mark()
            got = ha.wait_for(f"{BASE}/state/bitcoin", after=mark, timeout_s=60).json()
            assert got["source"] == "feed" and got["btc_price"] == "40545"  # from the cache
            brokerkit.wait_until(lambda: "no answer within 1 s" in log.read_text(), TIMEOUT_S,
                                 "the hang to be logged")
        finally:
            stop(proc)
            api.clear()
        text = log.read_text()
        assert "bitcoin terms from the cache" in text, text[-3000:]
        ha.close()
