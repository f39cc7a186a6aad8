"""`[bitcoin.feed]`: the live market feed that keeps a site's bitcoin terms current.

One public source: the mempool.space REST API (https://mempool.space/docs/api/rest),
which any self-hosted mempool instance also serves. Off by default: a site without
internet pushes its terms over MQTT (`cmd/bitcoin_terms`) instead, and those go stale
after the same `stale_after_s`. See controller/runtime/market.py and docs/mqtt.md.
"""

from __future__ import annotations

from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from controller.config.base import Strict

MEMPOOL_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "CHF", "AUD", "JPY")
"""The currencies mempool.space's `GET /api/v1/prices` quotes."""


class MarketFeedSection(Strict):
    enabled: bool = Field(
        default=False,
        description="Fetch difficulty, block rewards and the BTC price from `url`",
    )
    url: str = Field(
        default="https://mempool.space/api",
        description="Base URL of a mempool.space REST API (the public one or your own)",
    )
    refresh_s: Annotated[int, Field(ge=60, le=86_400)] = Field(
        default=900, description="Fetch this often (seconds)")
    stale_after_s: Annotated[int, Field(ge=300, le=14 * 86_400)] = Field(
        default=6 * 3600,
        description="Terms older than this are not used: back to the static [bitcoin] terms",
    )
    timeout_s: Annotated[float, Field(ge=1, le=60)] = Field(
        default=10.0, description="A request that has not answered by then has failed")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None,
        description="Price currency read from the feed; default and only value: the site's",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL with a host, got {v!r}")
        if parts.query or parts.fragment:
            raise ValueError("must be the API's base URL, without a query or fragment")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _stale_after_refresh(self) -> Self:
        if self.enabled and self.stale_after_s < self.refresh_s:
            raise ValueError(
                f"stale_after_s ({self.stale_after_s}) must be at least refresh_s "
                f"({self.refresh_s}): the terms would go stale between two fetches")
        return self


def feed_currency_problem(feed: MarketFeedSection, site_currency: str) -> str | None:
    """Why this feed cannot price the site's money (None: it can). Hearth converts no
    currencies, so the feed must quote the BTC price in the site currency."""
    if not feed.enabled:
        return None
    cur = feed.currency or site_currency
    if cur != site_currency:
        return (f"bitcoin.feed.currency ({cur}) must be the site currency ({site_currency}): "
                "the BTC price prices the site's money and is not converted")
    if cur not in MEMPOOL_CURRENCIES:
        return (f"bitcoin.feed: mempool.space quotes no BTC price in {cur} (it has "
                f"{', '.join(MEMPOOL_CURRENCIES)}); disable the feed and push terms over MQTT")
    return None
