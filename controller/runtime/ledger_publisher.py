"""The ledger as a service publisher: one sample per tick, written by a worker thread.

A tick only builds the sample and puts it on a queue; the `LedgerWriter` (batched
commits, SQLite on an SD card or PostgreSQL over the network) runs in its own thread, so
a slow or unreachable database never delays control. If the database cannot be opened at
start or fails later, the publisher logs it and drops samples rather than grow without
bound; the ledger then shows the gap as a partial interval, honestly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from decimal import Decimal

from controller.config.models import SiteConfig
from controller.economics.hashprice import network_terms
from controller.ledger.accumulate import Sample
from controller.ledger.writer import LedgerWriter, open_site_writer
from controller.runtime.ports import TickRecord

log = logging.getLogger(__name__)
_STOP = object()


class LedgerPublisher:
    def __init__(self, cfg: SiteConfig, opener: Callable[[SiteConfig], LedgerWriter] =
                 open_site_writer, max_queue: int = 3600) -> None:
        self.cfg = cfg
        b = cfg.bitcoin
        self.terms = network_terms(b.network_difficulty, b.block_subsidy_btc,
                                   b.fees_per_block_btc, b.btc_price, b.pool_fee_pct)
        self.tick_s = cfg.control.tick_s
        self._q: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._opener = opener
        self._dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._work, name="ledger", daemon=True)
        self._thread.start()

    def publish(self, tick: TickRecord) -> None:
        m = tick.measurements
        if m.grid_power_w is None:
            return  # no meter, nothing to account
        miners = m.miners.values()
        price_imp = m.import_price_per_kwh if m.import_price_per_kwh is not None else float(
            self.cfg.tariffs.import_price_per_kwh)
        price_exp = m.export_price_per_kwh if m.export_price_per_kwh is not None else float(
            self.cfg.tariffs.export_price_per_kwh)
        sample = Sample.from_meters(
            tick.at_utc.timestamp(), self.tick_s,
            pv_w=m.pv_power_w.value if m.pv_power_w else 0.0,
            grid_w=m.grid_power_w.value,
            battery_w=m.battery_power_w.value if m.battery_power_w else 0.0,
            miner_w=sum(r.power_w for r in miners),
            hashrate_ths=sum(r.hashrate_ths for r in miners),
            import_price=Decimal(repr(price_imp)), export_price=Decimal(repr(price_exp)),
            btc=self.terms,
            soc_pct=m.soc_pct.value if m.soc_pct else float("nan"),
            tank_c=m.tank_temp_c.value if m.tank_temp_c else float("nan"),
        )
        try:
            self._q.put_nowait(sample)
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.error("ledger behind: %d samples dropped so far", self._dropped)

    def _work(self) -> None:
        try:
            writer = self._opener(self.cfg)
        except Exception:
            log.exception("ledger cannot be opened at %s: revenue is not recorded",
                          self.cfg.ledger.url)
            writer = None
        while True:
            item = self._q.get()
            if item is _STOP:
                break
            if writer is None or not isinstance(item, Sample):
                continue
            try:
                writer.add(item)
                self.written += 1
            except Exception:
                log.exception("ledger write failed: revenue recording stops")
                writer = None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                log.exception("ledger close failed")

    async def close(self) -> None:
        self._q.put(_STOP)
        await asyncio.to_thread(self._thread.join, 30.0)
