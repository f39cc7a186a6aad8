"""What a terahash is worth, one definition for the sim report, the plan and the bound.

Per row: the trace's `hashprice` (gross, site currency per TH/s per day) after the pool
fee, where the trace has one; else `[bitcoin]`'s network terms (difficulty, reward, BTC
price, pool fee). Sats are that value at the configured BTC price, which is what the
ledger does (`GivenHashprice`): so `sats_earned` and the ledger's sats agree.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.economics.hashprice import network_terms

FloatArray = npt.NDArray[np.float64]


def network_value_per_th(cfg: SiteConfig) -> float:
    """Site currency per terahash from `[bitcoin]` (after pool fee)."""
    b = cfg.bitcoin
    return float(network_terms(b.network_difficulty, b.block_subsidy_btc, b.fees_per_block_btc,
                               b.btc_price, b.pool_fee_pct).value_per_th_s())


def value_per_th(cfg: SiteConfig, hashprice: FloatArray) -> FloatArray:
    """Per row: the hashprice (gross, per TH/s·day) after pool fee, else the config's."""
    keep = 1.0 - cfg.bitcoin.pool_fee_pct / 100.0
    out = np.asarray(hashprice, dtype=np.float64) * keep / 86_400.0
    return np.where(np.isfinite(out), out, network_value_per_th(cfg))


def heat_cost_per_kwh(cfg: SiteConfig) -> float:
    """What a kWh of heat from the backup heater costs (fuel price / efficiency)."""
    bh = cfg.backup_heat
    return float(bh.fuel_price_per_kwh) / bh.efficiency
