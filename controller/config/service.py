"""How `hearth run` behaves as a service: start-up, shutdown, where it keeps its state."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from controller.config.base import Strict


class ServiceSection(Strict):
    start_delay_max_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=60.0,
        description="After fresh measurements exist, miners wait a random 0..this many "
        "seconds before they may start, so many sites never switch in step",
    )
    shutdown_state: Literal["pause", "off", "leave"] = Field(
        default="pause",
        description="What miners are told on SIGTERM/SIGINT: pause (API miners pause, relays "
        "open), off (same, and API miners are powered down where the API allows), leave",
    )
    data_dir: str = Field(
        default="/var/lib/hearth", description="State that survives a restart lives here"
    )
    state_save_interval_s: Annotated[float, Field(gt=0)] = 30.0
    tick_overrun_warn_s: Annotated[float, Field(gt=0)] = Field(
        default=0.5, description="Log a tick whose work took longer than this"
    )
