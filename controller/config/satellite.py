"""The satellite board next to the tank (firmware/): how the controller talks to it.

The board keeps the tank safe on its own (over-temperature cut-off, heartbeat watchdog);
the settings below are pushed to it over MQTT (`cmd/config`) whenever it comes online, so
the site file is the one place they are set. The board checks them again itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from controller.config.base import Strict

SensorRole = Literal["top", "middle", "bottom", "supply", "return"]
TankRole = Literal["top", "middle", "bottom"]


def _default_cutoff() -> list[SensorRole]:
    return ["top"]


class SatelliteSection(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    heartbeat_timeout_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=30.0,
        description="No heartbeat from the controller this long: the board goes to its safe "
        "state (contactor off)",
    )
    heartbeat_interval_s: Annotated[float, Field(gt=0, le=1200)] = Field(
        default=5.0, description="How often the controller sends its heartbeat"
    )
    tank_sensor: TankRole = Field(
        default="top", description="Which tank sensor is the tank temperature for control"
    )
    push_settings: bool = Field(
        default=True, description="Send the settings below to the board when it comes online"
    )
    tank_max_c: Annotated[float, Field(ge=30, le=98)] | None = Field(
        default=None,
        description="The board's own cut-off (contactor off, pump on). Default: tank.max_c + 2",
    )
    hysteresis_c: Annotated[float, Field(ge=0.5, le=20)] = Field(
        default=5.0, description="The cut-off releases at tank_max_c - hysteresis_c"
    )
    cutoff_sensors: list[SensorRole] = Field(
        default_factory=_default_cutoff, min_length=1,
        description="Sensors the cut-off watches (the hottest one counts)",
    )
    sensor_fault_s: Annotated[float, Field(ge=1, le=600)] = Field(
        default=10.0, description="A cut-off sensor without a valid reading this long trips"
    )
    litres_per_pulse: Annotated[float, Field(ge=0.001, le=1000)] | None = Field(
        default=None, description="Flow meter constant; default: what the board was provisioned"
    )
    telemetry_period_s: Annotated[float, Field(ge=0.2, le=3600)] = 5.0
    safe_pump_on: bool = Field(
        default=True, description="Pump state in the safe state (boot, lost heartbeat)"
    )

    @model_validator(mode="after")
    def _timing(self) -> Self:
        if self.heartbeat_interval_s * 3 > self.heartbeat_timeout_s:
            raise ValueError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be at most a third of "
                f"heartbeat_timeout_s ({self.heartbeat_timeout_s}), so one lost heartbeat "
                "does not trip the board"
            )
        if self.tank_max_c is not None and self.tank_max_c - self.hysteresis_c < 20:
            raise ValueError("tank_max_c - hysteresis_c must be at least 20 °C")
        return self

    def board_settings(self, tank_max_c: float | None) -> dict[str, Any]:
        """The settings pushed to the board (its `cmd/config`), given the site's tank.max_c."""
        out: dict[str, Any] = {
            "heartbeat_timeout_s": self.heartbeat_timeout_s,
            "hysteresis_c": self.hysteresis_c,
            "cutoff_sensors": list(self.cutoff_sensors),
            "sensor_fault_s": self.sensor_fault_s,
            "telemetry_period_s": self.telemetry_period_s,
            "safe_pump_on": self.safe_pump_on,
        }
        cutoff = self.tank_max_c
        if cutoff is None and tank_max_c is not None:
            cutoff = min(tank_max_c + 2.0, 98.0)
        if cutoff is not None:
            out["tank_max_c"] = cutoff
        if self.litres_per_pulse is not None:
            out["litres_per_pulse"] = self.litres_per_pulse
        return out
