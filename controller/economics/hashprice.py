"""What mining is worth at an instant: THE one place (issue 16).

Expected sats = TH/s x seconds x hashvalue (sats per TH/s per day / 86,400), after the
pool fee; their value in the site currency = sats x that interval's BTC price / 1e8. The
controller's break-even, the supervisor, the day-ahead plan, `hearth bound`, the quality
figures, the simulator's report, the ledger and the HMI all read it from here: exactly
(`BtcTerms`, for money) or per row of a trace (`TermsSeries`, float arrays, for a year of
steps).

Expected sats = hashes / (difficulty x 2^32) x (block subsidy + average fees per block):
a share of difficulty D takes D x 2^32 hashes on average, and finding a block pays its
subsidy plus its fees. A pool (FPPS) pays that expectation minus its fee. All in exact
rationals: the ledger floors to millisats only when an interval is closed.

Three ways to get there, all behind `BtcTerms`:

- `NetworkTerms`: difficulty, subsidy, fees and BTC price (hashvalue computed);
- `Hashvalue`: the hashvalue (sats per TH/s per day, gross of pool fee, as in the trace's
  `hashvalue_sats_per_th_day` column) and the BTC price of the interval;
- `GivenHashprice`: a hashprice (currency per TH/s per day, gross of pool fee, as in the
  trace's old `hashprice` column) and the BTC price that turns value back into sats.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from controller.economics.money import dec, micro

if TYPE_CHECKING:  # the config imports the economics' tariff models; no cycle at runtime
    from controller.config.models import BitcoinSection

SATS_PER_BTC = 100_000_000
TWO_32 = 2**32
DAY_S = 86_400
TH = 10**12
J_PER_KWH = 3_600_000


def expected_sats(hashes: int | Fraction, difficulty: Decimal | Fraction,
                  reward_sats: int | Fraction) -> Fraction:
    """hashes / (difficulty x 2^32) x reward, exactly (no pool fee)."""
    return Fraction(hashes) * Fraction(reward_sats) / (Fraction(difficulty) * TWO_32)


def _check_pool_fee(pool_fee_pct: Decimal) -> None:
    if not 0 <= pool_fee_pct < 100:
        raise ValueError("pool_fee_pct must be in [0, 100)")


def _kept_after_fee(pool_fee_pct: Decimal) -> Fraction:
    """The share of the expected value a pool pays out (1 - fee)."""
    return 1 - Fraction(pool_fee_pct) / 100


@dataclass(frozen=True)
class NetworkTerms:
    """Hashprice from the network: difficulty, reward per block, BTC price, pool fee."""

    difficulty: Decimal
    reward_sats: int  # block subsidy + average fees per block
    btc_price: Decimal  # site currency per BTC
    pool_fee_pct: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.difficulty <= 0 or self.btc_price <= 0 or self.reward_sats < 0:
            raise ValueError("difficulty and btc_price must be > 0, reward_sats >= 0")
        _check_pool_fee(self.pool_fee_pct)

    def sats_per_th_s(self) -> Fraction:
        """Expected sats, after pool fee, for one terahash."""
        keep = _kept_after_fee(self.pool_fee_pct)
        return expected_sats(TH, self.difficulty, self.reward_sats) * keep

    def value_per_th_s(self) -> Fraction:
        """Site currency, after pool fee, for one terahash."""
        return self.sats_per_th_s() * Fraction(self.btc_price) / SATS_PER_BTC

    def hashprice_per_th_day(self) -> Decimal:
        """Gross hashprice (before pool fee), currency per TH/s per day."""
        gross = expected_sats(TH * DAY_S, self.difficulty, self.reward_sats)
        return micro(gross * Fraction(self.btc_price) / SATS_PER_BTC)

    def hashvalue_sats_per_th_day(self) -> Fraction:
        """Gross hashvalue (before pool fee): expected sats per TH/s per day."""
        return expected_sats(TH * DAY_S, self.difficulty, self.reward_sats)

    def key(self) -> str:
        """Short text naming the terms (stored with each interval, for explanation)."""
        return (f"net:d={self.difficulty.normalize():f};r={self.reward_sats};"
                f"btc={self.btc_price.normalize():f};fee={self.pool_fee_pct.normalize():f}")


@dataclass(frozen=True)
class GivenHashprice:
    """A hashprice given directly (gross, currency per TH/s per day) and the BTC price."""

    hashprice_per_th_day: Decimal
    btc_price: Decimal
    pool_fee_pct: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.hashprice_per_th_day < 0 or self.btc_price <= 0:
            raise ValueError("hashprice must be >= 0 and btc_price > 0")
        _check_pool_fee(self.pool_fee_pct)

    def value_per_th_s(self) -> Fraction:
        keep = _kept_after_fee(self.pool_fee_pct)
        return Fraction(self.hashprice_per_th_day) * keep / DAY_S

    def sats_per_th_s(self) -> Fraction:
        return self.value_per_th_s() * SATS_PER_BTC / Fraction(self.btc_price)

    def key(self) -> str:
        return (f"hp:{self.hashprice_per_th_day.normalize():f};"
                f"btc={self.btc_price.normalize():f};fee={self.pool_fee_pct.normalize():f}")


@dataclass(frozen=True)
class Hashvalue:
    """A hashvalue given directly (gross sats per TH/s per day) and the interval's BTC price."""

    sats_per_th_day: Decimal
    btc_price: Decimal
    pool_fee_pct: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.sats_per_th_day < 0 or self.btc_price <= 0:
            raise ValueError("hashvalue must be >= 0 and btc_price > 0")
        _check_pool_fee(self.pool_fee_pct)

    def sats_per_th_s(self) -> Fraction:
        keep = _kept_after_fee(self.pool_fee_pct)
        return Fraction(self.sats_per_th_day) * keep / DAY_S

    def value_per_th_s(self) -> Fraction:
        return self.sats_per_th_s() * Fraction(self.btc_price) / SATS_PER_BTC

    def key(self) -> str:
        return (f"hv:{self.sats_per_th_day.normalize():f};"
                f"btc={self.btc_price.normalize():f};fee={self.pool_fee_pct.normalize():f}")


BtcTerms = NetworkTerms | GivenHashprice | Hashvalue


def network_terms(difficulty: float | Decimal, subsidy_btc: Decimal, fees_btc: Decimal,
                  btc_price: Decimal, pool_fee_pct: float | Decimal = 0) -> NetworkTerms:
    """NetworkTerms from the units people quote (BTC per block, difficulty as printed)."""
    reward = (subsidy_btc + fees_btc) * SATS_PER_BTC
    if reward != reward.to_integral_value():
        raise ValueError(f"subsidy + fees must be whole sats, got {subsidy_btc + fees_btc} BTC")
    return NetworkTerms(dec(difficulty), int(reward), btc_price, dec(pool_fee_pct))


def config_terms(b: BitcoinSection) -> NetworkTerms:
    """The site file's static `[bitcoin]` terms (what applies when nothing newer is known)."""
    return network_terms(b.network_difficulty, b.block_subsidy_btc, b.fees_per_block_btc,
                         b.btc_price, b.pool_fee_pct)


# -- per row of a trace ----------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TermsSeries:
    """Per row of a trace: expected sats per terahash (after pool fee) and the BTC price.

    The float twin of `row_terms` (same resolution, same formula): for a year of steps in
    the simulator, the plan, the bound and the quality figures. Money that is booked goes
    through the exact `BtcTerms` instead.
    """

    sats_per_th: FloatArray  # expected sats per terahash, after pool fee
    btc_price: FloatArray  # site currency per BTC

    @property
    def value_per_th(self) -> FloatArray:
        """Site currency per terahash: sats x the interval's BTC price."""
        return self.sats_per_th * self.btc_price / SATS_PER_BTC

    def value_per_kwh(self, j_per_th: float) -> FloatArray:
        """Site currency per kWh through a miner at `j_per_th` (3.6e6 / j_per_th TH a kWh),
        as `breakeven.marginal_value_per_kwh` says exactly."""
        return self.value_per_th * (J_PER_KWH / j_per_th)


def terms_series(b: BitcoinSection, hashvalue_sats_per_th_day: npt.ArrayLike,
                 btc_price: npt.ArrayLike, hashprice: npt.ArrayLike) -> TermsSeries:
    """Resolve a trace's bitcoin columns (NaN = not given) row by row:

    - the BTC price: `btc_price`, else `[bitcoin].btc_price`;
    - the hashvalue: `hashvalue_sats_per_th_day`, else `hashprice` / that BTC price,
      else `[bitcoin]`'s network terms (difficulty, subsidy + fees);
    - after `[bitcoin].pool_fee_pct`.
    """
    base = config_terms(b)
    keep = 1.0 - float(b.pool_fee_pct) / 100.0
    price = np.asarray(btc_price, dtype=np.float64)
    price = np.where(np.isfinite(price), price, float(b.btc_price))
    hv = np.asarray(hashvalue_sats_per_th_day, dtype=np.float64)
    hp = np.asarray(hashprice, dtype=np.float64)
    from_hp = hp / price * SATS_PER_BTC
    hv = np.where(np.isfinite(hv), hv,
                  np.where(np.isfinite(from_hp), from_hp,
                           float(base.hashvalue_sats_per_th_day())))
    return TermsSeries(hv * keep / DAY_S, price)


def hashvalue_series(difficulty: npt.ArrayLike, reward_btc: npt.ArrayLike) -> FloatArray:
    """Gross hashvalue, sats per TH/s per day, of each (difficulty, subsidy + fees per
    block): the float twin of `NetworkTerms.hashvalue_sats_per_th_day` for a daily file.
    1 TH/s finds 86,400 x 10^12 / (difficulty x 2^32) blocks a day on average."""
    blocks = TH * DAY_S / (np.asarray(difficulty, dtype=np.float64) * float(TWO_32))
    return np.asarray(blocks * np.asarray(reward_btc, dtype=np.float64) * SATS_PER_BTC,
                      dtype=np.float64)


class RowTerms:
    """The exact `BtcTerms` of a trace row, resolved as `terms_series` does; one object per
    distinct row (a year has a few hundred), so the controller sees the same object while
    the terms do not change."""

    def __init__(self, b: BitcoinSection) -> None:
        self.base = config_terms(b)
        self.fee = self.base.pool_fee_pct
        self._cache: dict[tuple[float, float, float], BtcTerms] = {}

    def __call__(self, hashvalue_sats_per_th_day: float, btc_price: float,
                 hashprice: float) -> BtcTerms:
        # NaN != NaN: a NaN key would miss every time (and grow the cache by a row).
        key = (-1.0 if hashvalue_sats_per_th_day != hashvalue_sats_per_th_day
               else hashvalue_sats_per_th_day,
               -1.0 if btc_price != btc_price else btc_price,
               -1.0 if hashprice != hashprice else hashprice)
        t = self._cache.get(key)
        if t is None:
            t = self._cache[key] = self._make(hashvalue_sats_per_th_day, btc_price, hashprice)
        return t

    def _make(self, hv: float, price: float, hp: float) -> BtcTerms:
        btc = self.base.btc_price if math.isnan(price) else dec(price)
        if not math.isnan(hv):
            return Hashvalue(dec(hv), btc, self.fee)
        if not math.isnan(hp):
            return GivenHashprice(dec(hp), btc, self.fee)
        if math.isnan(price):
            return self.base
        return dataclasses.replace(self.base, btc_price=btc)

    def is_static(self, hashvalue_sats_per_th_day: FloatArray, btc_price: FloatArray,
                  hashprice: FloatArray) -> bool:
        """True when no row gives any bitcoin column (every row takes `[bitcoin]`)."""
        return not (np.isfinite(hashvalue_sats_per_th_day).any()
                    or np.isfinite(btc_price).any() or np.isfinite(hashprice).any())
