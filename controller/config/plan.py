"""`[plan]`: the day-ahead plan (docs/plan.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from controller.config.base import Strict


class PlanSection(Strict):
    enabled: bool = Field(
        default=False, description="`hearth run`: re-plan the tank and miners day-ahead (LP)"
    )
    forecast: Literal["persistence"] = Field(
        default="persistence",
        description="PV, load and heat demand of the same time yesterday",
    )
    step_s: Literal[900, 1800, 3600] = 900
    horizon_h: Annotated[float, Field(ge=6, le=48)] = Field(
        default=36.0, description="At most this far ahead; never past the published prices"
    )
    prices_published_hour_local: Annotated[float, Field(ge=0, lt=24)] = Field(
        default=13.0, description="When the next day's day-ahead prices are known (site time)"
    )
    deviation_kwh: Annotated[float, Field(gt=0)] = Field(
        default=1.5,
        description="Re-plan when surplus or heat demand missed the forecast by this over an hour",
    )
    min_replan_interval_s: Annotated[float, Field(ge=0)] = Field(
        default=3 * 3600.0, description="Re-plans for forecast error at most this often"
    )
