"""`cmd/prices` and `cmd/bitcoin_terms` into the running service: the command queue with a tap.

The MQTT wiring hands every non-DR command to its `CommandQueue`, drained by the tick.
A price series or a set of bitcoin terms is not an override of the controller but an
input of a feed, so this queue takes `SetPrices` and `SetBitcoinTerms` off the line and
gives them to their feed at once (on the bridge's thread: each feed swaps one reference),
and queues everything else.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.bridge.commands import (
    Command,
    CommandQueue,
    CommandRefused,
    SetBitcoinTerms,
    SetPrices,
)
from controller.errors import Problem
from controller.runtime.market import MarketTerms
from controller.runtime.prices import PriceSeries


class PriceCommandTap(CommandQueue):
    def __init__(self, inner: CommandQueue, on_prices: Callable[[PriceSeries], None],
                 on_bitcoin_terms: Callable[[MarketTerms], None] | None = None) -> None:
        super().__init__(maxsize=1)
        self.inner = inner
        self.on_prices = on_prices
        self.on_bitcoin_terms = on_bitcoin_terms

    def __call__(self, command: Command) -> None:
        if isinstance(command, SetPrices):
            self.on_prices(command.series)
        elif isinstance(command, SetBitcoinTerms) and self.on_bitcoin_terms is not None:
            self.on_bitcoin_terms(command.terms)
        else:
            self.inner(command)

    def drain(self) -> list[Command]:
        return self.inner.drain()


def refuse_in_safe_mode(_: object) -> None:
    """Safe mode runs no price or terms feed: a series or terms sent then are refused."""
    raise CommandRefused([Problem("", "safe mode: the controller runs no price or bitcoin "
                                      "terms feed until its site file is fixed; send it "
                                      "again after the restart")])
