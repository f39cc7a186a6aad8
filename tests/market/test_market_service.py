"""Live bitcoin terms in `hearth run`'s tick: the controller decides on them, the ledger books
them, the tick record says where they came from; stale ones give way to the static terms.

The service runs on the in-process plant (tests/unit/test_service.py's ports); the terms
arrive as `cmd/bitcoin_terms` would deliver them (BitcoinTermsFeed.accept).
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import simkit
from unit.test_service import FakeTime, Fleet, PlantPorts

from controller.ledger.query import Ledger
from controller.runtime.ledger_publisher import LedgerPublisher
from controller.runtime.market import BitcoinTermsFeed, MarketTerms
from controller.runtime.service import Clock, Service
from controller.sim.plant import Plant


def test_pushed_terms_drive_the_tick_and_the_ledger_until_stale(tmp_path: Path) -> None:
    d = simkit.site_dict()
    del d["battery"]
    db = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    d["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    d["ledger"] = {"database_url": db, "flush_interval_s": 60}
    d["bitcoin"] = {**d["bitcoin"], "feed": {"stale_after_s": 600}}
    cfg = simkit.parse_site(d)
    clock = FakeTime()
    epoch = datetime(2025, 6, 1, 10, 0, tzinfo=UTC).timestamp() - clock.t

    def utc_s() -> float:
        return epoch + clock.t

    feed = BitcoinTermsFeed(cfg, tmp_path, utc=utc_s)
    # Twice the static BTC price, the same network: every sat is worth twice as much.
    live = MarketTerms(Decimal(repr(cfg.bitcoin.network_difficulty)),
                       feed.static.reward_sats, feed.static.btc_price * 2, "EUR",
                       utc_s(), "mqtt", "cmd/bitcoin_terms")
    feed.accept(live)
    ports = PlantPorts(Plant(cfg), clock)
    pub = LedgerPublisher(cfg)
    service = Service(cfg, [ports], Fleet(ports), [pub],
                      Clock(monotonic=clock, utc=lambda: datetime.fromtimestamp(utc_s(), UTC)),
                      rng=random.Random(7), bitcoin=feed)
    recs = []
    for _ in range(1800):  # two 15-min intervals: the first live, the second from 10:10 on static
        recs.append(service.tick())
        clock.t += 1.0
    asyncio.run(pub.close())
    first, last = recs[0], recs[-1]
    assert first.bitcoin is not None and first.bitcoin.source == "mqtt"
    assert first.measurements.btc_terms is not None
    assert first.measurements.btc_terms.btc_price == feed.static.btc_price * 2
    assert service.controller.terms == feed.static  # the controller followed back
    assert last.bitcoin is not None and last.bitcoin.source == "config" and last.bitcoin.stale
    assert last.measurements.btc_terms is None  # None = the controller's static terms
    changed = [i for i, r in enumerate(recs[1:], 1)
               if (r.measurements.btc_terms is None) != (recs[i - 1].measurements.btc_terms
                                                         is None)]
    assert changed == [601]  # the step after stale_after_s
    led = Ledger.open(db)
    rows = led.intervals()
    led.close()
    assert [r["btc_terms"] for r in rows] == ["mixed:2"]  # 10:00-10:15: live, then static
    # The ledger valued the first 600 s at twice the price: its BTC value per sat is above
    # the static price's.
    r = rows[0]
    per_sat = r["btc_value"] * 1000 / r["expected_msat"]
    static_per_sat = feed.static.btc_price / 100_000_000
    assert static_per_sat < per_sat < 2 * static_per_sat
