"""Typed driver settings: the `driver = {...}` table of a `[[miners]]` entry.

`MinerConfig.driver` is a free dict in the site model; here it is validated per API (the
`api` key picks the model) and every problem is reported with its TOML path
(`miners[i].driver.<field>`). Secrets are not written into the site file: a driver takes a
`password_env` (the name of an environment variable) or, for lab setups and emulators, a
literal `password`.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from controller.config.base import Strict

Port = Annotated[int, Field(ge=1, le=65535)]
Timeout = Annotated[float, Field(gt=0, le=60)]


class _Common(Strict):
    host: Annotated[str, Field(min_length=1)]
    timeout_s: Timeout = Field(default=3.0, description="Per-request timeout")
    settle_margin_s: Annotated[float, Field(ge=0, le=600)] = Field(
        default=5.0, description="Added to (max - min) / ramp for the declared settle time"
    )


class _Secret(Strict):
    password: str | None = Field(default=None, description="Literal password (lab use)")
    password_env: str | None = Field(
        default=None, description="Name of the environment variable holding the password"
    )

    def resolve_password(self, default: str = "") -> str:
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise LookupError(f"environment variable {self.password_env} is not set")
            return value
        return self.password if self.password is not None else default

    @model_validator(mode="after")
    def _one_secret(self) -> _Secret:
        if self.password is not None and self.password_env is not None:
            raise ValueError("give either password or password_env, not both")
        return self


class CgminerTelemetry(Strict):
    """Read-only cgminer/bmminer API beside a relay (hash rate and temperature)."""

    api: Literal["cgminer"] = "cgminer"
    host: Annotated[str, Field(min_length=1)]
    port: Port = 4028
    timeout_s: Timeout = 3.0


class BraiinsSettings(_Common, _Secret):
    api: Literal["braiins-os"]
    port: Port = 80
    username: str = "root"


class AxeOsSettings(_Common):
    api: Literal["axeos"]
    port: Port = 80
    curve: str = Field(
        default="bitaxe-gamma",
        description="Power curve profile: a name in controller/miners/profiles or a TOML path",
    )
    min_write_interval_s: Annotated[float, Field(ge=0)] = Field(
        default=30.0, description="AxeOS writes NVS flash on every PATCH: at most one per this"
    )
    use_pause: bool = Field(
        default=False,
        description="Pause with POST /api/system/pause (firmware whose SystemInfo reports "
                    "miningPaused); off: no pause, pair the board with a relay",
    )


class WhatsminerSettings(_Common, _Secret):
    api: Literal["whatsminer"]
    port: Port = 4433
    account: str = "super"
    rated_power_w: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Power at 100 % (default: the miner's max_power_w)"
    )
    mode: Literal["fast", "normal"] = "fast"


class VnishSettings(_Common, _Secret):
    api: Literal["vnish"]
    port: Port = 80


class LuxosSettings(_Common):
    api: Literal["luxos"]
    port: Port = 4028


class AvalonSettings(_Common):
    api: Literal["avalon"]
    port: Port = 4028
    level_command: Literal["workmode", "worklevel"] = Field(
        default="workmode",
        description="ascset option that sets the level: 'workmode' (Avalon API document, "
                    "Nano 3S) or 'worklevel' (pyasic); the other is tried once if refused",
    )


class ShellySettings(_Common):
    api: Literal["shelly"]
    port: Port = 80
    switch_id: Annotated[int, Field(ge=0)] = 0
    telemetry: CgminerTelemetry | None = None


class TasmotaSettings(Strict):
    api: Literal["tasmota"]
    host: Annotated[str, Field(min_length=1)] = Field(description="MQTT broker host")
    port: Port = 1883
    topic: Annotated[str, Field(pattern=r"^[^#+/\s][^#+\s]*$")] = Field(
        description="The plug's Tasmota %topic% (cmnd/<topic>/POWER)"
    )
    username: str | None = None
    password: str | None = None
    timeout_s: Timeout = 3.0
    settle_margin_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    telemetry: CgminerTelemetry | None = None


class CgminerSettings(CgminerTelemetry):
    settle_margin_s: Annotated[float, Field(ge=0, le=600)] = 5.0


DriverSettings = Annotated[
    BraiinsSettings | AxeOsSettings | WhatsminerSettings | VnishSettings | LuxosSettings
    | AvalonSettings | ShellySettings | TasmotaSettings | CgminerSettings,
    Field(discriminator="api"),
]
_ADAPTER: TypeAdapter[DriverSettings] = TypeAdapter(DriverSettings)
APIS = ("braiins-os", "axeos", "whatsminer", "vnish", "luxos", "avalon", "shelly", "tasmota",
        "cgminer")


def parse_driver_settings(raw: dict[str, object]) -> DriverSettings:
    """Validate one driver table; raises pydantic's ValidationError (paths relative)."""
    return _ADAPTER.validate_python(raw)


__all__ = ["APIS", "DriverSettings", "ValidationError", "parse_driver_settings"]
