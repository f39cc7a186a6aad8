"""Modbus devices of a site (grid meter, PV inverter, battery). Owned by the acquisition
layer (controller/devices); only the shape the site file needs lives here.

```toml
[[devices]]
name = "meter"
role = "grid_meter"          # grid_meter | pv_inverter | battery | hybrid
map = "eastron-sdm630"       # a shipped map id (see `docs/modbus.md`) or a path to a .toml
transport = "rtu"
serial_port = "/dev/ttyUSB0"
baudrate = 9600
parity = "N"
unit_id = 1
period_s = 1.0

[[devices]]
name = "inverter"
role = "hybrid"
map = "huawei-sun2000"
transport = "tcp"
host = "192.0.2.20"
port = 502
```

Timeouts, pauses and the unit id default to what the map recommends for that family.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from controller.config.base import Strict

Role = Literal["grid_meter", "pv_inverter", "battery", "hybrid"]

# What each role contributes to the site's measurements (a map may offer more).
ROLE_QUANTITIES: dict[str, tuple[str, ...]] = {
    "grid_meter": (
        "grid_power_w", "grid_power_l1_w", "grid_power_l2_w", "grid_power_l3_w",
        "grid_voltage_l1_v", "grid_voltage_l2_v", "grid_voltage_l3_v",
        "grid_current_l1_a", "grid_current_l2_a", "grid_current_l3_a", "grid_frequency_hz",
    ),
    "pv_inverter": ("pv_power_w", "pv_power_l1_w", "pv_power_l2_w", "pv_power_l3_w"),
    "battery": ("battery_power_w", "soc_pct"),
}
ROLE_QUANTITIES["hybrid"] = tuple(q for qs in ROLE_QUANTITIES.values() for q in qs)

Seconds = Annotated[float, Field(gt=0)]


class DeviceConfig(Strict):
    """One Modbus device, polled on its own period over a (possibly shared) connection."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
    role: Role = Field(description="What the device measures for the site")
    map: str = Field(description="Register map: a shipped map id or a path to a .toml file")
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = Field(default=None, description="tcp: host name or address")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="tcp: port (default: the map's, usually 502)"
    )
    serial_port: str | None = Field(default=None, description="rtu: e.g. /dev/ttyUSB0")
    baudrate: Annotated[int, Field(ge=300, le=921600)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit_id: Annotated[int, Field(ge=0, le=255)] | None = Field(
        default=None, description="Modbus unit / device id (default: the map's)"
    )
    period_s: Seconds = Field(default=1.0, description="Poll period")
    timeout_s: Seconds | None = Field(
        default=None, description="Reply timeout per request (default: the map's)"
    )
    retries: Annotated[int, Field(ge=0, le=5)] = Field(
        default=1, description="Immediate retries of a failed read within one poll"
    )
    inter_request_delay_s: Annotated[float, Field(ge=0, le=10)] | None = Field(
        default=None, description="Pause between two requests on the connection"
    )
    connect_delay_s: Annotated[float, Field(ge=0, le=30)] | None = Field(
        default=None, description="Pause after connecting before the first request"
    )
    backoff_max_s: Seconds = Field(
        default=300.0, description="A failing device is retried ever more slowly, up to this"
    )
    frozen_after_s: Seconds | None = Field(
        default=None,
        description="Treat values that have not changed at all for this long as stale",
    )
    provides: list[str] | None = Field(
        default=None, description="Quantities to take from this device (default: by role)"
    )
    sunspec_base: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        default=None, description="SunSpec maps: skip discovery of the SunS marker"
    )

    @model_validator(mode="after")
    def _transport_fields(self) -> Self:
        if self.transport == "tcp":
            if not self.host:
                raise ValueError("transport 'tcp' needs host")
            if self.serial_port is not None:
                raise ValueError("serial_port only applies to transport 'rtu'")
        else:
            if not self.serial_port:
                raise ValueError("transport 'rtu' needs serial_port")
            if self.host is not None or self.port is not None:
                raise ValueError("host/port only apply to transport 'tcp'")
        if self.provides is not None:
            allowed = ROLE_QUANTITIES[self.role]
            bad = [q for q in self.provides if q not in allowed]
            if bad:
                raise ValueError(f"provides: {bad} are not quantities of role "
                                 f"'{self.role}' ({', '.join(allowed)})")
        return self

    def quantities(self) -> tuple[str, ...]:
        return tuple(self.provides) if self.provides is not None else ROLE_QUANTITIES[self.role]
