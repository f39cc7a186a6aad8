"""What the miners' heat is worth: the backup heating it displaced.

Heat the tank delivered to the building is heat the backup would otherwise have had to
produce. Producing 1 kWh of heat costs the backup's energy price divided by its
efficiency: a gas boiler (price of gas / boiler efficiency), a heat pump (electricity /
COP) or a resistive heater (electricity / 1). An electric backup may be valued at the
interval's import price instead of a fixed one (`price_per_kwh = None`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Literal

from controller.economics.money import DIVIDE, dec

BackupKind = Literal["gas_boiler", "heat_pump", "resistive"]


@dataclass(frozen=True)
class HeatValuation:
    kind: BackupKind
    efficiency: Decimal  # boiler efficiency (0..1) or heat-pump COP
    price_per_kwh: Decimal | None  # fuel or electricity; None: the interval's import price

    def __post_init__(self) -> None:
        if self.efficiency <= 0:
            raise ValueError("efficiency must be > 0")
        if self.price_per_kwh is None and self.kind == "gas_boiler":
            raise ValueError("a gas boiler needs a fuel price (the import price is for "
                             "electric backups)")

    def energy_price(self, import_price_per_kwh: Decimal) -> Decimal:
        """Price of the backup's input energy (before efficiency)."""
        return self.price_per_kwh if self.price_per_kwh is not None else import_price_per_kwh

    def cost_per_kwh_heat(self, import_price_per_kwh: Decimal) -> Decimal:
        with localcontext(DIVIDE):
            return self.energy_price(import_price_per_kwh) / self.efficiency

    @classmethod
    def from_config(cls, kind: BackupKind, efficiency: float, fuel_price_per_kwh: Decimal,
                    electric_at_import_price: bool = False) -> HeatValuation:
        price = None if electric_at_import_price and kind != "gas_boiler" else fuel_price_per_kwh
        return cls(kind, dec(efficiency), price)
