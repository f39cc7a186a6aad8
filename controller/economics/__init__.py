"""Economics: tariffs, hashprice, heat value, grid-service payments, break-even.

Pure functions and small value classes, exact (Decimal / Fraction), no I/O except the
explicit readers of price and payout files and the price feed. The ledger
(controller/ledger) applies them per interval; the supervisor and the HMI use the
break-even price.
"""

from controller.economics.breakeven import MarginalValue, marginal_value_per_kwh, site_break_even
from controller.economics.grid_service import DrBaseline, GridServiceTerms
from controller.economics.hashprice import (
    BtcTerms,
    GivenHashprice,
    NetworkTerms,
    expected_sats,
    network_terms,
)
from controller.economics.heat import HeatValuation
from controller.economics.money import Money, dec
from controller.economics.tariffs import (
    FixedTariff,
    PricePair,
    SeriesTariff,
    Tariff,
    TimeOfUseTariff,
    build_tariff,
)

__all__ = [
    "BtcTerms",
    "DrBaseline",
    "FixedTariff",
    "GivenHashprice",
    "GridServiceTerms",
    "HeatValuation",
    "MarginalValue",
    "Money",
    "NetworkTerms",
    "PricePair",
    "SeriesTariff",
    "Tariff",
    "TimeOfUseTariff",
    "build_tariff",
    "dec",
    "expected_sats",
    "marginal_value_per_kwh",
    "network_terms",
    "site_break_even",
]
