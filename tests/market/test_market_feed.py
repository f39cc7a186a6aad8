"""The live bitcoin terms feed against an emulated mempool.space API over real HTTP.

The emulator (hil/market/mempool.py) serves the responses mempool.space documents
(hil/market/recorded/SOURCES.md) and, on demand, errors, garbage and hangs. Time for the
staleness limit is a test clock; HTTP, the cache file and the timeouts are real.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from simkit import site, site_dict

from controller.config import SiteConfig
from controller.economics.hashprice import NetworkTerms
from controller.runtime.market import CACHE_NAME, BitcoinTermsFeed
from hil.market.mempool import FAULTS, MempoolEmulator, recorded

REWARDS = [e["avgRewards"] for e in recorded("rewards")]
MEAN_REWARD = (sum(REWARDS) + len(REWARDS) // 2) // len(REWARDS)
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def feed_site(url: str, **feed: Any) -> SiteConfig:
    d = site_dict()
    d["bitcoin"] = {**d["bitcoin"], "feed": {"enabled": True, "url": url, "timeout_s": 1.0,
                                             "refresh_s": 600, "stale_after_s": 3600, **feed}}
    return site(**{k: v for k, v in d.items() if k != "site"}, site=d["site"])


@pytest.fixture
def api() -> Any:
    with MempoolEmulator(retry_after_s=300) as emu:
        yield emu


def make_feed(api: MempoolEmulator, tmp_path: Path, clock: Clock, **feed: Any
              ) -> BitcoinTermsFeed:
    return BitcoinTermsFeed(feed_site(api.url, **feed), tmp_path, utc=clock)


def test_recorded_replies_give_the_network_terms(api: MempoolEmulator, tmp_path: Path) -> None:
    clock = Clock()
    feed = make_feed(api, tmp_path, clock)
    assert feed.status().source == "config"  # nothing fetched yet: the static terms
    assert feed.refresh()
    st = feed.status()
    assert st.source == "feed" and not st.stale and st.fallback_reason is None
    fee = Decimal(repr(feed_site(api.url).bitcoin.pool_fee_pct))
    assert st.terms == NetworkTerms(Decimal("31251101365711.12"), MEAN_REWARD,
                                    Decimal(40545), fee)
    assert api.hits == {"hashrate": 1, "rewards": 1, "prices": 1}
    # The tick gets the same object while the terms do not change.
    assert feed.status().terms is st.terms


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("endpoint", ["hashrate", "rewards", "prices"])
def test_every_fault_is_refused_and_the_last_good_terms_stay(
        api: MempoolEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        endpoint: Any, fault: Any) -> None:
    clock = Clock()
    feed = make_feed(api, tmp_path, clock)
    assert feed.refresh()
    good = feed.status().terms
    api.fault(endpoint, fault)
    # A fault that only one endpoint can show (a zero difficulty) is a valid reply elsewhere.
    harmless = fault == "zero_difficulty" and endpoint != "hashrate"
    clock.t += 60
    with caplog.at_level(logging.ERROR, logger="controller.runtime.market"):
        assert feed.refresh() is harmless
    if harmless:
        return
    st = feed.status()
    assert st.terms is good and st.source == "feed"  # nothing half-applied
    assert feed.live is not None and feed.live.as_of_s == T0
    assert st.last_error is not None
    path = {"hashrate": "hashrate/3d", "rewards": "rewards/24h", "prices": "prices"}[endpoint]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "bitcoin feed refused or failed (keeping the last good terms)" in logged
    assert path in logged, logged
    field = {"hashrate": "currentDifficulty", "rewards": "avgRewards", "prices": "EUR"}
    if fault in ("negative", "huge", "string_number", "missing_field", "zero_difficulty"):
        assert field[endpoint] in logged, logged  # the reason names the field
    if fault.startswith("http_"):
        assert f"HTTP {fault[5:]}" in logged
    if fault == "hang":
        assert "no answer within 1 s" in logged
    if fault in ("not_json", "truncated"):
        assert "not JSON" in logged
    api.clear()
    clock.t += 60
    assert feed.refresh()  # recovers at once
    assert feed.status().last_error is None


def test_outage_keeps_terms_until_stale_then_falls_back_and_recovers(
        api: MempoolEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    feed = make_feed(api, tmp_path, clock)
    assert feed.refresh()
    live = feed.status().terms
    api.fault("*", "http_503")
    caplog.set_level(logging.INFO, logger="controller.runtime.market")
    for _ in range(5):  # the outage: every retry fails, the terms stay while fresh
        clock.t += 700
        assert not feed.refresh()
        assert feed.status().terms is live
    clock.t = T0 + 3600  # exactly the limit: still in force
    assert feed.status().source == "feed"
    clock.t = T0 + 3601
    st = feed.status()
    assert st.source == "config" and st.stale
    assert st.terms == feed.static and st.terms is not live
    assert "older than 3600 s" in (st.fallback_reason or "")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("using the static [bitcoin] terms" in w and "older than 3600 s" in w
               for w in warned), warned
    payload = st.as_json()
    assert payload["source"] == "config" and payload["stale"] is True
    assert payload["btc_price"] == str(feed.static.btc_price)
    api.clear()
    clock.t += 60
    assert feed.refresh()
    st = feed.status()
    assert st.source == "feed" and not st.stale
    assert any("bitcoin terms: live from feed" in r.getMessage() for r in caplog.records)


def test_retry_backs_off_and_honours_retry_after(api: MempoolEmulator, tmp_path: Path
                                                 ) -> None:
    clock = Clock()
    feed = make_feed(api, tmp_path, clock)
    api.fault("hashrate", "http_500")
    waits = []
    for _ in range(5):
        feed.refresh()
        waits.append(feed.next_try_s - clock.t)
    assert waits == [60, 120, 240, 480, 600]  # doubling, up to refresh_s
    api.fault("hashrate", "http_429")
    feed.refresh()
    assert feed.next_try_s - clock.t == 600  # Retry-After 300 < the back-off: the longer
    feed.failures = 0
    feed.refresh()
    assert feed.next_try_s - clock.t == 300  # first retry: Retry-After beats 60 s
    api.clear()
    feed.refresh()
    assert feed.next_try_s - clock.t == 600  # success: the regular period


def test_cache_survives_a_restart_and_still_goes_stale(api: MempoolEmulator, tmp_path: Path
                                                       ) -> None:
    clock = Clock()
    assert make_feed(api, tmp_path, clock).refresh()
    api.fault("*", "hang")  # the source is away when the service restarts
    clock.t += 1000
    again = make_feed(api, tmp_path, clock)
    st = again.status()
    assert st.source == "feed" and st.terms.btc_price == Decimal(40545)
    assert api.hits["hashrate"] == 1  # from the file, not the network
    clock.t = T0 + 3601
    assert again.status().source == "config"


@pytest.mark.parametrize("text", [
    "{not json", json.dumps({"version": 99, "terms": {}}),
    json.dumps({"version": 1, "terms": {"difficulty": "-5", "reward_sats": 1,
                                        "btc_price": "1", "currency": "EUR", "as_of_s": T0,
                                        "source": "feed", "origin": "x"}}),
    json.dumps({"version": 1, "terms": {"difficulty": "5", "reward_sats": 1,
                                        "btc_price": "1", "currency": "USD", "as_of_s": T0,
                                        "source": "feed", "origin": "x"}}),
])
def test_a_bad_cache_file_is_ignored_with_a_reason(
        api: MempoolEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
        ) -> None:
    (tmp_path / CACHE_NAME).write_text(text)
    with caplog.at_level(logging.WARNING, logger="controller.runtime.market"):
        feed = make_feed(api, tmp_path, Clock())
    assert feed.status().source == "config"
    assert any(CACHE_NAME in r.getMessage() for r in caplog.records)


def test_the_poll_task_fetches_at_start_and_stops(api: MempoolEmulator, tmp_path: Path
                                                  ) -> None:
    feed = BitcoinTermsFeed(feed_site(api.url), tmp_path)  # real clock

    async def run() -> None:
        await feed.start()
        for _ in range(100):
            if feed.accepted:
                break
            await asyncio.sleep(0.05)
        await feed.stop()

    asyncio.run(run())
    assert feed.accepted == 1 and feed.status().source == "feed"


def test_a_disabled_feed_never_fetches(api: MempoolEmulator, tmp_path: Path) -> None:
    feed = BitcoinTermsFeed(feed_site(api.url, enabled=False), tmp_path)

    async def run() -> None:
        await feed.start()
        await asyncio.sleep(0.1)
        await feed.stop()

    asyncio.run(run())
    assert api.hits == {"hashrate": 0, "rewards": 0, "prices": 0}
    assert "feed is off" in (feed.status().fallback_reason or "")


def test_the_wall_page_words_for_each_source(api: MempoolEmulator, tmp_path: Path) -> None:
    from hmi.state import bitcoin_alarm, bitcoin_of

    clock = Clock()
    feed = make_feed(api, tmp_path, clock)
    out = bitcoin_of(feed.status())
    assert out is not None and out.source == "config" and not out.stale
    assert out.words == "Fixed price: no live one yet."
    assert bitcoin_alarm(feed.status()) is None  # no live terms ever: nothing went wrong
    assert feed.refresh()
    out = bitcoin_of(feed.status())
    assert out is not None and (out.source, out.btc_price) == ("feed", "40545")
    assert out.words == "Live market price." and out.as_of is not None
    clock.t += 3601
    out = bitcoin_of(feed.status())
    assert out is not None and out.source == "config" and out.stale
    assert out.words == "Fixed price: the live one is over 1 h old."
    assert out.btc_price == str(feed.static.btc_price)
    alarm = bitcoin_alarm(feed.status())
    assert alarm is not None and alarm.severity == "info"
    assert alarm.title == "Bitcoin price not live" and "fixed price" in alarm.detail
    assert bitcoin_of(None) is None
