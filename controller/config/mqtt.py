"""MQTT bridge settings of a site: broker, credentials reference, TLS, telemetry timing.

The password never lives in the site file (installers push that file over MQTT and read
it back): `password_file` names a file readable only by the service. Relative paths are
resolved against the directory of the site file.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from controller.config.base import Strict


class MqttTls(Strict):
    """TLS to the broker. No CA file: the system trust store is used."""

    ca_file: str | None = Field(default=None, description="PEM CA that signed the broker")
    cert_file: str | None = Field(default=None, description="Client certificate (optional)")
    key_file: str | None = Field(default=None, description="Key of the client certificate")

    @model_validator(mode="after")
    def _cert_and_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (both or neither)")
        return self


class MqttSection(Strict):
    host: str = Field(default="localhost", min_length=1)
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="Default 1883, or 8883 with [mqtt.tls]"
    )
    username: str = Field(min_length=1, description="Broker account (anonymous is refused)")
    password_file: str = Field(
        min_length=1, description="File holding the broker password (first line)"
    )
    password: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    tls: MqttTls | None = None
    client_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="Default: hearth-<site id>"
    )
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    telemetry_interval_s: Annotated[float, Field(ge=0.1, le=3600)] = Field(
        default=5.0, description="A state topic is published on change, at most this often"
    )
    telemetry_refresh_s: Annotated[float, Field(ge=1, le=86400)] = Field(
        default=60.0, description="An unchanged state topic is re-published this often"
    )
    state_expiry_s: Annotated[int, Field(ge=2, le=86400)] = Field(
        default=300,
        description="MQTT message expiry of retained state: a dead site's values vanish",
    )
    discovery: bool = Field(default=True, description="Announce entities to Home Assistant")
    discovery_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = (
        "homeassistant"
    )
    reconnect_min_s: Annotated[int, Field(ge=1, le=60)] = Field(
        default=1, description="First reconnect delay; doubles up to reconnect_max_s"
    )
    reconnect_max_s: Annotated[int, Field(ge=1, le=3600)] = 60
    max_command_bytes: Annotated[int, Field(ge=256, le=65536)] = 4096
    max_config_bytes: Annotated[int, Field(ge=4096, le=4_194_304)] = 262_144

    @field_validator("password")
    @classmethod
    def _no_inline_password(cls, v: Any) -> None:
        if v is not None:
            raise ValueError(
                "must not be in the site file (it is pushed and read back over MQTT); "
                "put it in a file only the service can read and set password_file"
            )
        return None

    @model_validator(mode="after")
    def _timing(self) -> Self:
        if self.telemetry_refresh_s < self.telemetry_interval_s:
            raise ValueError(
                f"telemetry_refresh_s ({self.telemetry_refresh_s}) must be at least "
                f"telemetry_interval_s ({self.telemetry_interval_s})"
            )
        if self.state_expiry_s <= self.telemetry_refresh_s:
            raise ValueError(
                f"state_expiry_s ({self.state_expiry_s}) must be above telemetry_refresh_s "
                f"({self.telemetry_refresh_s}), or live values would expire between refreshes"
            )
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls is not None else 1883
