"""What a terahash is worth per row of a trace, for the sim report, the plan, the bound and
the quality figures: a thin view of `controller.economics.hashprice` (the one definition,
issue 16), so they and the ledger agree.

Per row: the trace's `hashvalue_sats_per_th_day` (else its `hashprice` / BTC price, else
`[bitcoin]`'s network terms) after the pool fee, at the row's `btc_price` (else
`[bitcoin].btc_price`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.economics.hashprice import TermsSeries, config_terms, terms_series

if TYPE_CHECKING:
    from controller.trace.reader import Trace

FloatArray = npt.NDArray[np.float64]


def network_value_per_th(cfg: SiteConfig) -> float:
    """Site currency per terahash from `[bitcoin]` (after pool fee)."""
    return float(config_terms(cfg.bitcoin).value_per_th_s())


def trace_terms(cfg: SiteConfig, tr: Trace) -> TermsSeries:
    """Per row of `tr`: sats per terahash (after pool fee) and the BTC price."""
    return terms_series(cfg.bitcoin, tr.hashvalue_sats_per_th_day, tr.btc_price, tr.hashprice)


def value_per_th(cfg: SiteConfig, tr: Trace) -> FloatArray:
    """Per row of `tr`: site currency per terahash (after pool fee)."""
    return trace_terms(cfg, tr).value_per_th


def heat_cost_per_kwh(cfg: SiteConfig) -> float:
    """What a kWh of heat from the backup heater costs (fuel price / efficiency)."""
    bh = cfg.backup_heat
    return float(bh.fuel_price_per_kwh) / bh.efficiency
