"""The satellite board next to the tank (firmware/): how the controller talks to it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from controller.config.base import Strict


class SatelliteSection(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    heartbeat_timeout_s: Annotated[float, Field(gt=0)] = 30.0
