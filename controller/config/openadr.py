"""OpenADR 2.0b settings of a site: the VTN to register with and what its signals mean.

The VEN (controller/runtime/openadr.py) polls the VTN (OpenADR 2.0b simple HTTP, pull
model). Its latency is the poll interval: an aggregator usually requests 10 s or more,
so a site that must shed within a second polls faster (`poll_interval_s`), with the
aggregator's agreement. Relative file paths are resolved against the site file.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from controller.config.base import Strict


class OpenAdrSection(Strict):
    """`[openadr]`: register with a VTN and turn its events into DR caps and requests."""

    enabled: bool = True
    vtn_url: str = Field(
        min_length=1,
        description="The VTN's OpenADR 2.0b base URL, e.g. "
        "https://vtn.example.com/OpenADR2/Simple/2.0b",
    )
    ven_name: str = Field(min_length=1, max_length=128, description="This VEN's name")
    ven_id: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="A venID agreed with the VTN; default: the one the VTN assigns",
    )
    cert_file: str | None = Field(
        default=None, description="PEM client certificate (TLS and message signing)"
    )
    key_file: str | None = Field(default=None, description="Key of the client certificate")
    ca_file: str | None = Field(default=None, description="PEM CA that signed the VTN")
    vtn_fingerprint: str | None = Field(
        default=None, description="Fingerprint of the VTN's certificate: its signed "
        "messages are checked against it"
    )
    poll_interval_s: Annotated[float, Field(ge=0.05, le=86_400)] | None = Field(
        default=None,
        description="Poll the VTN this often; default: the interval the VTN requests. "
        "The time to shed after a signal is at most this (plus a few ms)",
    )
    reconnect_s: Annotated[float, Field(ge=0.5, le=3600)] = Field(
        default=10.0, description="Retry registration this often while the VTN is away"
    )
    simple_level_cap_w: list[Annotated[float, Field(ge=0)]] | None = Field(
        default=None,
        description="SIMPLE signal levels 1, 2, 3 -> cap on total miner power (W); "
        "default: half the miners' capacity, 0, 0. Level 0 is normal operation",
    )
    load_control_capacity: Literal["fraction", "watts"] = Field(
        default="fraction",
        description="LOAD_CONTROL x-loadControlCapacity payload: a fraction 0..1 of the "
        "miners' capacity (the OpenADR 2.0b definition) or watts",
    )
    report_power: bool = Field(
        default=True, description="Offer a TELEMETRY_USAGE report of the miners' power"
    )
    report_interval_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=10, description="Sampling rate offered for the telemetry report"
    )

    @field_validator("vtn_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("simple_level_cap_w")
    @classmethod
    def _levels(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) != 3:
            raise ValueError("needs three caps, for SIMPLE levels 1, 2 and 3")
        if any(b > a for a, b in itertools.pairwise(v)):
            raise ValueError("a higher level must not allow more power (caps must not "
                             "increase from level 1 to 3)")
        return v

    @model_validator(mode="after")
    def _cert_and_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (both or neither)")
        if self.ca_file is not None and self.cert_file is None:
            # openleadr builds its TLS context only with a client certificate.
            raise ValueError("ca_file is used only with a client certificate (cert_file and "
                             "key_file); without one the system CAs verify the VTN")
        return self

    def level_caps_w(self, miner_capacity_w: float) -> list[float]:
        """Caps for SIMPLE levels 1..3 (W)."""
        if self.simple_level_cap_w is not None:
            return list(self.simple_level_cap_w)
        return [miner_capacity_w / 2, 0.0, 0.0]
