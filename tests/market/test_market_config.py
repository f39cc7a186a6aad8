"""`[bitcoin.feed]` in the site file: strict types, bounds, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from simkit import site_dict

from controller.config import parse_site
from controller.errors import InputError


def parse(feed: dict[str, Any], currency: str = "EUR") -> Any:
    d = site_dict()
    d["site"] = {**d["site"], "currency": currency}
    d["bitcoin"] = {**d["bitcoin"], "feed": feed}
    return parse_site(d, "site.toml")


def problems(feed: dict[str, Any], currency: str = "EUR") -> str:
    with pytest.raises(InputError) as err:
        parse(feed, currency)
    return "\n".join(str(p) for p in err.value.problems)


def test_defaults_are_off_and_name_mempool_space() -> None:
    f = parse({}).bitcoin.feed
    assert not f.enabled and f.url == "https://mempool.space/api"
    assert (f.refresh_s, f.stale_after_s, f.timeout_s) == (900, 21600, 10.0)
    on = parse({"enabled": True, "url": "http://10.0.0.5:8999/api/", "refresh_s": 60,
                "stale_after_s": 300, "currency": "EUR"}).bitcoin.feed
    assert on.url == "http://10.0.0.5:8999/api"


@pytest.mark.parametrize(("feed", "where", "why"), [
    ({"refresh_s": 59}, "bitcoin.feed.refresh_s", "greater than or equal to 60"),
    ({"refresh_s": 86_401}, "bitcoin.feed.refresh_s", "less than or equal to 86400"),
    ({"refresh_s": "900"}, "bitcoin.feed.refresh_s", "valid integer"),
    ({"stale_after_s": 299}, "bitcoin.feed.stale_after_s", "greater than or equal to 300"),
    ({"stale_after_s": 15 * 86_400}, "bitcoin.feed.stale_after_s", "less than or equal"),
    ({"timeout_s": 0.5}, "bitcoin.feed.timeout_s", "greater than or equal to 1"),
    ({"enabled": 1}, "bitcoin.feed.enabled", "valid boolean"),
    ({"url": "ftp://x/api"}, "bitcoin.feed.url", "http:// or https://"),
    ({"url": "https://mempool.space/api?x=1"}, "bitcoin.feed.url", "without a query"),
    ({"currency": "eur"}, "bitcoin.feed.currency", "pattern"),
    ({"enabled": True, "refresh_s": 3600, "stale_after_s": 1800}, "bitcoin.feed",
     "stale_after_s (1800) must be at least refresh_s (3600)"),
    ({"interval_s": 60}, "bitcoin.feed.interval_s", "unknown key"),
])
def test_bad_settings_are_refused_naming_the_field(feed: dict[str, Any], where: str,
                                                   why: str) -> None:
    text = problems(feed)
    assert where in text and why in text, text


def test_the_feed_quotes_the_site_currency_or_is_refused() -> None:
    text = problems({"enabled": True, "currency": "USD"})
    assert "bitcoin.feed.currency (USD) must be the site currency (EUR)" in text
    text = problems({"enabled": True}, currency="SEK")
    assert "mempool.space quotes no BTC price in SEK" in text
    assert parse({"enabled": False}, currency="SEK").bitcoin.feed.currency is None
    # Off, only stale_after_s counts (for terms pushed over MQTT): refresh_s is not used.
    assert parse({"refresh_s": 3600, "stale_after_s": 600}).bitcoin.feed.stale_after_s == 600
