"""Live bitcoin terms for `hearth run`: the market feed, terms pushed over MQTT, the fallback.

What mining is worth moves every day (the BTC price) and every two weeks (difficulty);
the site file's static `[bitcoin]` terms are a fallback, not a truth. Sources, newest
wins:

- the market feed (`[bitcoin.feed] enabled`): mempool.space's REST API
  (controller/runtime/mempool.py) every `refresh_s`, off the tick in a thread. A failed
  or refused round is logged with its reason (the endpoint and field) and changes
  nothing; the next try comes sooner (60 s doubling up to `refresh_s`, or the server's
  Retry-After);
- `cmd/bitcoin_terms` over MQTT, for sites without internet (controller/bridge/commands.py).

The last accepted terms are kept on disk (`<data_dir>/bitcoin_terms.json`, written
atomically) and reloaded at start. Terms older than `stale_after_s` are not used: the
controller falls back to the static `[bitcoin]` terms and says so — a log line on each
change, `state/bitcoin` over MQTT (`source`, `stale`, `fallback_reason`) and the wall page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from controller.config.models import SiteConfig
from controller.economics.hashprice import (
    DAY_S,
    TH,
    NetworkTerms,
    config_terms,
    expected_sats,
)
from controller.errors import InputError, Problem
from controller.runtime.mempool import FeedError, Fetch, fetch_quote, http_get_json
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CACHE_NAME = "bitcoin_terms.json"
CACHE_VERSION = 1
FIRST_RETRY_S = 60.0
Source = Literal["feed", "mqtt"]


@dataclass(frozen=True)
class MarketTerms:
    """Network terms as some source stated them at `as_of_s` (UTC epoch s)."""

    difficulty: Decimal
    reward_sats: int  # subsidy + average fees per block
    btc_price: Decimal  # site currency per BTC
    currency: str
    as_of_s: float  # when they were fetched or pushed
    source: Source
    origin: str  # the feed's URL, or "cmd/bitcoin_terms"

    def terms(self, pool_fee_pct: Decimal) -> NetworkTerms:
        return NetworkTerms(self.difficulty, self.reward_sats, self.btc_price, pool_fee_pct)

    def hashvalue_sats_per_th_day(self) -> Decimal:
        """Gross expected sats per TH/s per day (before pool fee), to the millisat."""
        v = expected_sats(TH * DAY_S, self.difficulty, self.reward_sats)
        return Decimal(round(v * 1000)) / 1000

    def as_json(self) -> dict[str, Any]:
        return {"difficulty": str(self.difficulty), "reward_sats": self.reward_sats,
                "btc_price": str(self.btc_price), "currency": self.currency,
                "as_of_s": self.as_of_s, "source": self.source, "origin": self.origin}

    @classmethod
    def from_json(cls, d: Any) -> MarketTerms:
        """From the cache file; ValueError/KeyError/TypeError on anything else."""
        if not isinstance(d, dict):
            raise TypeError("not an object")
        src = d["source"]
        if src not in ("feed", "mqtt"):
            raise ValueError(f"source {src!r}")
        t = cls(Decimal(str(d["difficulty"])), int(d["reward_sats"]),
                Decimal(str(d["btc_price"])), str(d["currency"]), float(d["as_of_s"]), src,
                str(d["origin"]))
        NetworkTerms(t.difficulty, t.reward_sats, t.btc_price)  # same bounds as live terms
        return t


@dataclass(frozen=True)
class TermsStatus:
    """What the controller uses now and why; for the tick, MQTT and the wall page."""

    terms: NetworkTerms  # always usable: the static [bitcoin] terms on fallback
    source: Literal["feed", "mqtt", "config"]
    live: MarketTerms | None  # the last accepted live terms, even if stale
    stale: bool  # live terms exist but are older than stale_after_s
    fallback_reason: str | None  # why the static terms are in force (None: they are not)
    last_error: str | None  # the feed's last refusal or failure, if the last try failed
    stale_after_s: int
    currency: str  # the site's: the BTC price's unit

    @property
    def hashvalue_sats_per_th_day(self) -> Decimal:
        v = expected_sats(TH * DAY_S, self.terms.difficulty, self.terms.reward_sats)
        return Decimal(round(v * 1000)) / 1000

    def as_json(self) -> dict[str, Any]:
        """`state/bitcoin` and the HMI's `bitcoin` block (decimal strings, exact)."""
        t = self.terms
        live = self.live
        return {
            "source": self.source,
            "stale": self.stale,
            "fallback_reason": self.fallback_reason,
            "as_of": None if live is None else _iso(live.as_of_s),
            "live_source": None if live is None else live.source,
            "currency": self.currency,
            "btc_price": str(t.btc_price),
            "difficulty": str(t.difficulty),
            "reward_sats": t.reward_sats,
            "pool_fee_pct": str(t.pool_fee_pct),
            "hashvalue_sats_per_th_day": str(self.hashvalue_sats_per_th_day),
            "last_error": self.last_error,
            "stale_after_s": self.stale_after_s,
        }


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BitcoinTermsFeed:
    """The service's bitcoin terms: `status(utc_s)` each tick, kept fresh off the tick."""

    def __init__(self, cfg: SiteConfig, data_dir: Path | None = None, *,
                 utc: Callable[[], float] = time.time, fetch: Fetch = http_get_json) -> None:
        b = cfg.bitcoin
        self.section = b.feed
        self.currency = cfg.site.currency
        self.pool_fee_pct = Decimal(repr(b.pool_fee_pct))
        self.static = config_terms(b)  # the controller's own fallback, the same terms
        self.path = (Path(data_dir) if data_dir is not None
                     else Path(cfg.service.data_dir)) / CACHE_NAME
        self.utc = utc
        self.fetch = fetch
        self.live: MarketTerms | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.accepted = 0
        self.next_try_s = 0.0  # UTC epoch s of the next fetch
        self._live_terms: NetworkTerms | None = None  # one object per accepted terms
        self._lock = threading.Lock()
        self._was: tuple[str, str | None] | None = None  # (source, reason) last reported
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[TermsStatus], None]] = []
        self._load_cache()

    # -- sources --------------------------------------------------------------------------

    def accept(self, terms: MarketTerms) -> None:
        """New live terms (the feed or MQTT): replace the current ones whole, keep on disk."""
        with self._lock:
            self.live = terms
            self._live_terms = terms.terms(self.pool_fee_pct)
            self.accepted += 1
        log.info("bitcoin terms from %s (%s): difficulty %s, reward %d sats/block, BTC %s %s",
                 terms.source, terms.origin, terms.difficulty, terms.reward_sats,
                 terms.btc_price, terms.currency)
        self._save_cache(terms)

    def refresh(self) -> bool:
        """One round against the feed's API; True if new terms were accepted. Never raises:
        a failure or a refused reply is logged with its reason and the last good terms stay."""
        s = self.section
        now = self.utc()
        try:
            q = fetch_quote(s.url, s.currency or self.currency, s.timeout_s, self.fetch)
        except FeedError as err:
            self.failures += 1
            text = err.render()
            if text != self.last_error:
                log.error("bitcoin feed refused or failed (keeping %s): %s",
                          "the last good terms" if self.live else "the static [bitcoin] terms",
                          text)
            else:
                log.debug("bitcoin feed still failing: %s", text)
            self.last_error = text
            wait = min(float(s.refresh_s), FIRST_RETRY_S * 2 ** min(self.failures - 1, 10))
            if err.retry_after_s is not None:
                wait = max(wait, min(err.retry_after_s, float(s.refresh_s)))
            self.next_try_s = now + wait
            return False
        self.failures = 0
        if self.last_error is not None:
            log.info("bitcoin feed answering again: %s", s.url)
        self.last_error = None
        self.next_try_s = now + s.refresh_s
        self.accept(MarketTerms(q.difficulty, q.reward_sats, q.btc_price, q.currency, now,
                                "feed", s.url))
        return True

    # -- the tick's question --------------------------------------------------------------

    def status(self, utc_s: float | None = None) -> TermsStatus:
        """The terms to use at `utc_s`: live ones while fresh, else the static ones."""
        now = self.utc() if utc_s is None else utc_s
        with self._lock:
            live, live_terms = self.live, self._live_terms
        limit = self.section.stale_after_s
        if live is None or live_terms is None:
            reason = ("no live terms yet (the feed has not answered)" if self.section.enabled
                      else "no live terms: the feed is off and none were pushed over MQTT")
            st = TermsStatus(self.static, "config", None, False, reason, self.last_error,
                             limit, self.currency)
        elif now - live.as_of_s > limit:
            reason = (f"the terms from {live.source} ({_iso(live.as_of_s)}) are older than "
                      f"{limit} s")
            st = TermsStatus(self.static, "config", live, True, reason, self.last_error, limit,
                             self.currency)
        else:
            st = TermsStatus(live_terms, live.source, live, False, None, self.last_error,
                             limit, self.currency)
        self._report(st)
        return st

    def terms_at(self, utc_s: float) -> NetworkTerms:
        return self.status(utc_s).terms

    def _report(self, st: TermsStatus) -> None:
        key = (st.source, None if st.fallback_reason is None else st.fallback_reason[:20])
        if key == self._was:
            return
        first = self._was is None
        self._was = key
        if st.source == "config":
            if st.stale or not first:
                log.warning("bitcoin terms: using the static [bitcoin] terms (BTC %s %s): %s",
                            st.terms.btc_price, self.currency, st.fallback_reason)
            else:
                log.info("bitcoin terms: the static [bitcoin] terms until live ones arrive "
                         "(%s)", st.fallback_reason)
        else:
            log.info("bitcoin terms: live from %s (BTC %s %s)", st.source, st.terms.btc_price,
                     self.currency)
        for fn in self.listeners:
            try:
                fn(st)
            except Exception:
                log.exception("bitcoin terms listener %r failed", fn)

    # -- cache ----------------------------------------------------------------------------

    def _save_cache(self, terms: MarketTerms) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8") as f:
                json.dump({"version": CACHE_VERSION, "terms": terms.as_json()}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            log.error("cannot keep the bitcoin terms in %s: %s", self.path, err)

    def _load_cache(self) -> None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            log.warning("bitcoin terms cache %s unreadable (%s): ignored", self.path, err)
            return
        try:
            if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION:
                got = doc.get("version") if isinstance(doc, dict) else doc
                raise ValueError(f"version {got!r}, expected {CACHE_VERSION}")
            terms = MarketTerms.from_json(doc["terms"])
        except (KeyError, TypeError, ValueError, ArithmeticError) as err:
            log.warning("bitcoin terms cache %s refused (%s): ignored", self.path, err)
            return
        if terms.currency != self.currency:
            log.warning("bitcoin terms cache %s is in %s, the site in %s: ignored", self.path,
                        terms.currency, self.currency)
            return
        self.live = terms
        self._live_terms = terms.terms(self.pool_fee_pct)
        log.info("bitcoin terms from the cache %s: %s of %s", self.path, terms.source,
                 _iso(terms.as_of_s))

    # -- the poll task --------------------------------------------------------------------

    async def start(self) -> None:
        if not self.section.enabled or self._task is not None:
            return
        self._task = asyncio.create_task(self._poll(), name="bitcoin-feed")

    async def _poll(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # never let the poll die silently
                log.exception("bitcoin feed poll failed")
                self.next_try_s = self.utc() + FIRST_RETRY_S
            await asyncio.sleep(max(1.0, self.next_try_s - self.utc()))

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None


def pushed_terms(difficulty: Decimal, reward_sats: int, btc_price: Decimal, currency: str,
                 as_of_s: float) -> MarketTerms:
    """Terms from `cmd/bitcoin_terms` (already validated by the command's schema)."""
    try:
        NetworkTerms(difficulty, reward_sats, btc_price)
    except ValueError as err:
        raise InputError("cmd/bitcoin_terms", [Problem("", str(err))]) from None
    return MarketTerms(difficulty, reward_sats, btc_price, currency, as_of_s, "mqtt",
                       "cmd/bitcoin_terms")
