"""The mempool.space REST API: the three documented endpoints the market feed reads.

Source: https://mempool.space/docs/api/rest (the mempool project's own API docs,
frontend/src/app/docs/api-docs/api-docs-data.ts in github.com/mempool/mempool), and the
backend that serves them (backend/src/api/mining/mining-routes.ts,
backend/src/repositories/BlocksRepository.ts, backend/src/tasks/price-updater.ts):

- `GET /api/v1/mining/hashrate/3d` -> `{"hashrates": [..], "difficulty": [..],
  "currentHashrate": <H/s>, "currentDifficulty": <difficulty>}`. The server sends 0 for
  both when its Bitcoin Core does not answer.
- `GET /api/v1/mining/blocks/rewards/24h` -> `[{"avgHeight", "timestamp", "avgRewards",
  "USD"}, ..]`, oldest first; for 24h every block is its own entry and `avgRewards` is
  that block's subsidy + fees in sats, exactly.
- `GET /api/v1/prices` -> `{"time": <epoch s>, "USD": 43753, "EUR": 40545, ...}` (USD,
  EUR, GBP, CAD, CHF, AUD, JPY); -1 for a currency the server does not know yet.

Parsing is pure and strict: anything not as documented is refused with the endpoint and
the field named, and the feed keeps what it had (controller/runtime/market.py).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from controller.errors import InputError, Problem

HASHRATE_PATH = "/v1/mining/hashrate/3d"
REWARDS_PATH = "/v1/mining/blocks/rewards/24h"
PRICES_PATH = "/v1/prices"
MAX_BODY_BYTES = 1 << 20  # a day of block rewards is ~20 KB; more is not this API
MAX_DIFFICULTY = Decimal("1e18")  # ~1.5e14 in 2026: four orders of magnitude of headroom
MAX_REWARD_SATS = 10_000_000_000  # 100 BTC: twice the first subsidy, beyond any fees
MAX_BTC_PRICE = Decimal("1e10")  # in any of the quoted currencies (JPY ~1.5e7 in 2026)
MAX_BLOCKS = 2_000  # a day has ~144 blocks


class FeedError(InputError):
    """A fetch that failed or a reply that was refused; `retry_after_s` from a 429."""

    def __init__(self, source: str, problems: list[Problem],
                 retry_after_s: float | None = None) -> None:
        super().__init__(source, problems)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Quote:
    """What one round of the three requests said, validated."""

    difficulty: Decimal
    reward_sats: int  # mean subsidy + fees of the last 24 h's blocks
    blocks: int  # how many blocks that mean is over
    btc_price: Decimal  # in `currency` per BTC
    currency: str
    price_time_s: int  # the server's time of that price (UTC epoch s)


def _number(doc: Any, key: str, where: str, problems: list[Problem]) -> Decimal | None:
    """A finite JSON number (not a string, not a bool) at `doc[key]` as Decimal."""
    if not isinstance(doc, dict):
        problems.append(Problem(where, f"must be a JSON object, got {type(doc).__name__}"))
        return None
    if key not in doc:
        problems.append(Problem(f"{where} {key}", "missing"))
        return None
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        problems.append(Problem(f"{where} {key}", f"must be a number, got {v!r:.60}"))
        return None
    if isinstance(v, float) and not math.isfinite(v):
        problems.append(Problem(f"{where} {key}", f"must be finite, got {v!r}"))
        return None
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


def parse_difficulty(doc: Any) -> Decimal:
    where = HASHRATE_PATH
    problems: list[Problem] = []
    d = _number(doc, "currentDifficulty", where, problems)
    if d is not None:
        if d == 0:
            problems.append(Problem(f"{where} currentDifficulty", "is 0: the server's Bitcoin "
                                    "node is not answering"))
        elif d < 0:
            problems.append(Problem(f"{where} currentDifficulty", f"must be > 0, got {d}"))
        elif d > MAX_DIFFICULTY:
            problems.append(Problem(f"{where} currentDifficulty",
                                    f"{d:.3e} is beyond any plausible difficulty "
                                    f"(<= {MAX_DIFFICULTY:.0e})"))
    if problems:
        raise FeedError(where, problems)
    assert d is not None
    return d


def parse_rewards(doc: Any) -> tuple[int, int]:
    """(mean reward per block in whole sats, number of blocks) of the last 24 h."""
    where = REWARDS_PATH
    if not isinstance(doc, list):
        raise FeedError(where, [Problem("", f"must be a JSON list of blocks, got "
                                            f"{type(doc).__name__}")])
    if not doc:
        raise FeedError(where, [Problem("", "no blocks in the last 24 h")])
    if len(doc) > MAX_BLOCKS:
        raise FeedError(where, [Problem("", f"{len(doc)} entries for one day; at most "
                                            f"{MAX_BLOCKS}")])
    problems: list[Problem] = []
    total = 0
    for i, entry in enumerate(doc):
        at = f"[{i}]"
        r = _number(entry, "avgRewards", at, problems)
        if r is None:
            pass
        elif r != r.to_integral_value():
            problems.append(Problem(f"{at} avgRewards", f"must be whole sats, got {r}"))
        elif not 0 < r <= MAX_REWARD_SATS:
            problems.append(Problem(f"{at} avgRewards", f"must be within 1..{MAX_REWARD_SATS} "
                                                        f"sats, got {r}"))
        else:
            total += int(r)
        if len(problems) >= 5:
            break
    if problems:
        raise FeedError(where, problems)
    return (total + len(doc) // 2) // len(doc), len(doc)


def parse_price(doc: Any, currency: str) -> tuple[Decimal, int]:
    """(BTC price in `currency`, the server's time of it)."""
    where = PRICES_PATH
    problems: list[Problem] = []
    p = _number(doc, currency, where, problems)
    t = _number(doc, "time", where, problems) if isinstance(doc, dict) else None
    if p is not None:
        if p == -1:
            problems.append(Problem(f"{where} {currency}", "is -1: the server has no price "
                                                           "yet"))
        elif not 0 < p <= MAX_BTC_PRICE:
            problems.append(Problem(f"{where} {currency}", f"must be within 0..{MAX_BTC_PRICE:.0e}"
                                                           f" (exclusive of 0), got {p}"))
    if t is not None and (t != t.to_integral_value() or t <= 0):
        problems.append(Problem(f"{where} time", f"must be a positive whole epoch second, "
                                                 f"got {t}"))
    if problems:
        raise FeedError(where, problems)
    assert p is not None and t is not None
    return p, int(t)


# -- HTTP (stdlib: nothing heavy on the service's import path) ------------------------------

Fetch = Callable[[str, float], Any]
"""(url, timeout_s) -> decoded JSON, or FeedError."""


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    raw = err.headers.get("Retry-After") if err.headers is not None else None
    try:
        v = float(raw) if raw is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) and v >= 0 else None


def http_get_json(url: str, timeout_s: float) -> Any:
    """GET `url` and decode its JSON body; every failure is a FeedError with the reason."""
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "hearth (heat-reuse controller)"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code} {err.reason}"
        retry = _retry_after(err) if err.code in (429, 503) else None
        if retry is not None:
            reason += f" (Retry-After {retry:g} s)"
        raise FeedError(url, [Problem("", reason)], retry) from None
    except TimeoutError:
        raise FeedError(url, [Problem("", f"no answer within {timeout_s:g} s")]) from None
    except (urllib.error.URLError, OSError) as err:
        why = getattr(err, "reason", err)
        if isinstance(why, TimeoutError):
            raise FeedError(url, [Problem("", f"no answer within {timeout_s:g} s")]) from None
        raise FeedError(url, [Problem("", f"cannot reach it: {why}")]) from None
    if len(body) > MAX_BODY_BYTES:
        raise FeedError(url, [Problem("", f"reply larger than {MAX_BODY_BYTES} bytes")])
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise FeedError(url, [Problem("", f"not JSON: {str(err)[:120]}")]) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def fetch_quote(base_url: str, currency: str, timeout_s: float,
                fetch: Fetch = http_get_json) -> Quote:
    """One round: all three endpoints, all valid, or a FeedError (nothing half-taken)."""
    difficulty = parse_difficulty(fetch(base_url + HASHRATE_PATH, timeout_s))
    reward, blocks = parse_rewards(fetch(base_url + REWARDS_PATH, timeout_s))
    price, price_time = parse_price(fetch(base_url + PRICES_PATH, timeout_s), currency)
    return Quote(difficulty, reward, blocks, price, currency, price_time)
