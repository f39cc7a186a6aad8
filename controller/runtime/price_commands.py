"""`cmd/prices` into the running service: the bridge's command queue with a tap.

The MQTT wiring hands every non-DR command to its `CommandQueue`, drained by the tick.
A price series is not an override of the controller but an input of the price feed, so
this queue takes `SetPrices` off the line and gives the series to the feed at once (on
the bridge's thread: the feed swaps one reference), and queues everything else.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.bridge.commands import Command, CommandQueue, SetPrices
from controller.runtime.prices import PriceSeries


class PriceCommandTap(CommandQueue):
    def __init__(self, inner: CommandQueue, on_prices: Callable[[PriceSeries], None]) -> None:
        super().__init__(maxsize=1)
        self.inner = inner
        self.on_prices = on_prices

    def __call__(self, command: Command) -> None:
        if isinstance(command, SetPrices):
            self.on_prices(command.series)
        else:
            self.inner(command)

    def drain(self) -> list[Command]:
        return self.inner.drain()
