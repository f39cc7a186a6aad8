"""Marginal value of a kWh fed to a miner, and the import price at which mining breaks even.

One kWh through a miner at `j_per_th` J/TH makes 3.6e6 / j_per_th terahashes, worth
that many times the value of a terahash (after pool fee), and turns into heat; the share
that reaches the tank (`heat_fraction`) displaces backup heat worth its cost per kWh,
but only while the building needs heat. Importing for the miners pays as long as the
import price is below the sum: that is the break-even price the supervisor and the HMI
use ("mine from the grid below X per kWh").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from controller.economics.hashprice import J_PER_KWH, BtcTerms
from controller.economics.heat import HeatValuation
from controller.economics.money import micro

if TYPE_CHECKING:  # the config imports the economics' tariff models; no cycle at runtime
    from controller.config.models import SiteConfig


@dataclass(frozen=True)
class MarginalValue:
    """Per kWh of miner electricity, in the site currency (rounded to 1e-6)."""

    btc_per_kwh: Decimal
    heat_per_kwh: Decimal

    @property
    def total_per_kwh(self) -> Decimal:
        return self.btc_per_kwh + self.heat_per_kwh

    @property
    def break_even_import_price(self) -> Decimal:
        """Grid import pays for itself below this price."""
        return self.total_per_kwh


def marginal_value_per_kwh(j_per_th: float | Decimal, terms: BtcTerms,
                           heat_cost_per_kwh: Decimal = Decimal(0),
                           heat_fraction: float | Decimal = 0,
                           heat_needed: bool = True) -> MarginalValue:
    """Value of one more kWh through a miner (BTC + displaced heat)."""
    jpt = Fraction(Decimal(repr(j_per_th)) if isinstance(j_per_th, float) else j_per_th)
    if jpt <= 0:
        raise ValueError("j_per_th must be > 0")
    btc = Fraction(J_PER_KWH) / jpt * terms.value_per_th_s()
    frac = Fraction(Decimal(repr(heat_fraction)) if isinstance(heat_fraction, float)
                    else heat_fraction)
    heat = frac * Fraction(heat_cost_per_kwh) if heat_needed else Fraction(0)
    return MarginalValue(micro(btc), micro(heat))


def site_break_even(cfg: SiteConfig, terms: BtcTerms, heat_needed: bool = True,
                    import_price_per_kwh: Decimal | None = None) -> dict[str, MarginalValue]:
    """Each miner's marginal value per kWh at its most efficient point.

    A miner that heats the tank gets the tank's share of its power as displaced backup
    heat; an electric backup valued at the import price needs `import_price_per_kwh`.
    """
    bh = cfg.backup_heat
    valuation = HeatValuation.from_config(bh.kind, bh.efficiency, bh.fuel_price_per_kwh)
    price = import_price_per_kwh if import_price_per_kwh is not None \
        else cfg.tariffs.import_price_per_kwh
    heat_cost = valuation.cost_per_kwh_heat(price)
    fraction = Decimal(repr(cfg.tank.miner_heat_fraction)) if cfg.tank is not None else Decimal(0)
    return {
        m.name: marginal_value_per_kwh(m.best_j_per_th, terms, heat_cost,
                                       fraction if m.heats_tank else Decimal(0), heat_needed)
        for m in cfg.miners
    }
