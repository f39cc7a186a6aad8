"""The ledger as a service publisher: one sample per tick, written by a worker thread.

A tick only builds the sample and puts it on a queue; the `LedgerWriter` (batched
commits, SQLite on an SD card or PostgreSQL over the network) runs in its own thread, so
a slow or unreachable database never delays control. If the database cannot be opened
(at start, or after a write failed), the publisher logs it, drops samples rather than grow
without bound, and tries again every `reopen_s`: a busy or briefly absent database must not
cost a whole run's revenue. The ledger shows the gap as a partial interval, honestly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal

from controller.config.models import SiteConfig
from controller.economics.grid_service import Request
from controller.economics.hashprice import config_terms
from controller.ledger.accumulate import Sample
from controller.ledger.writer import LedgerWriter, open_site_writer
from controller.runtime.ports import TickRecord

log = logging.getLogger(__name__)
_STOP = object()


def dr_request_of(tick: TickRecord) -> Request:
    """The grid-service request this tick ran under: a DR cap (MQTT, OpenADR, or a trace's
    dr_limit_w) is "reduce", a DR absorption "absorb"; the ledger pays activation for it
    against the miners' baseline before the request (economics/grid_service.py)."""
    o = tick.overrides
    if o.dr_cap_w is not None or tick.measurements.dr_limit_w is not None:
        return "reduce"
    if o.dr_absorb_w is not None:
        return "absorb"
    return ""


class LedgerPublisher:
    def __init__(self, cfg: SiteConfig, opener: Callable[[SiteConfig], LedgerWriter] =
                 open_site_writer, max_queue: int = 3600, reopen_s: float = 10.0) -> None:
        self.cfg = cfg
        self.reopen_s = reopen_s
        self.terms = config_terms(cfg.bitcoin)  # until a feed or the snapshot says newer
        self.tick_s = cfg.control.tick_s
        self._q: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._opener = opener
        self._dropped = 0
        self.written = 0
        # The DR events in force this tick ("source:event_id"), recorded with the interval
        # they are paid in; set by the service's assembly (controller/runtime/dr.py).
        self.dr_events: Callable[[], tuple[str, ...]] | None = None
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
            btc=m.btc_terms if m.btc_terms is not None else self.terms,  # live, else static
            soc_pct=m.soc_pct.value if m.soc_pct else float("nan"),
            tank_c=m.tank_temp_c.value if m.tank_temp_c else float("nan"),
            dr_request=dr_request_of(tick),
            dr_events=self.dr_events() if self.dr_events is not None else (),
        )
        try:
            self._q.put_nowait(sample)
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.error("ledger behind: %d samples dropped so far", self._dropped)

    def _open(self) -> LedgerWriter | None:
        try:
            return self._opener(self.cfg)
        except Exception:
            log.exception("ledger cannot be opened at %s: revenue is not recorded until it "
                          "can be (next try in %.0f s)", self.cfg.ledger.url, self.reopen_s)
            return None

    def _work(self) -> None:
        writer = self._open()
        next_try = time.monotonic() + self.reopen_s
        while True:
            item = self._q.get()
            if item is _STOP:
                break
            if not isinstance(item, Sample):
                continue
            if writer is None and time.monotonic() >= next_try:
                writer = self._open()
                next_try = time.monotonic() + self.reopen_s
                if writer is not None:
                    log.warning("ledger open again at %s after %d dropped sample(s)",
                                self.cfg.ledger.url, self._dropped)
            if writer is None:
                self._dropped += 1
                continue
            try:
                writer.add(item)
                self.written += 1
            except Exception:
                log.exception("ledger write failed: reopening in %.0f s", self.reopen_s)
                try:
                    writer.close()
                except Exception:
                    log.debug("closing the failed ledger writer failed too", exc_info=True)
                writer = None
                next_try = time.monotonic() + self.reopen_s
        if writer is not None:
            try:
                writer.close()
            except Exception:
                log.exception("ledger close failed")

    async def close(self) -> None:
        self._q.put(_STOP)
        await asyncio.to_thread(self._thread.join, 30.0)
