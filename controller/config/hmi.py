"""Settings of the wall-tablet HMI (hmi/): where it listens, where it keeps its logins.

No secret lives here: the site file is pushed and read back by installers (MQTT
provisioning, the installer page), so the installer password, the resident PIN, sessions
and API tokens are kept in a separate auth store (`auth_store_path`, mode 0600) that only
the service reads and writes.

```toml
[hmi]
listen_host = "0.0.0.0"   # the tablet is another device on the LAN
listen_port = 8080
public_view = true        # the wall page can be read without logging in
# HTTPS on the LAN (the password and the PIN must not travel in clear): `hearth hmi cert`
# makes a self-signed certificate for the Pi's LAN name and prints these two lines.
# tls_cert_file = "/var/lib/hearth/hmi-cert.pem"
# tls_key_file = "/var/lib/hearth/hmi-key.pem"
```
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from controller.config.base import Strict


class HmiSection(Strict):
    enabled: bool = Field(default=True, description="Serve the HMI from `hearth run`")
    listen_host: str = Field(
        default="0.0.0.0", min_length=1,
        description="Address to listen on (0.0.0.0: every interface; 127.0.0.1: this Pi only)",
    )
    listen_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    auth_store_path: str | None = Field(
        default=None,
        description="Logins, PIN, sessions and API tokens (JSON, 0600); "
        "default: <service.data_dir>/hmi-auth.json",
    )
    public_view: bool = Field(
        default=True,
        description="Anyone on the network may read the wall page and the read-only API; "
        "false: reading needs a login or a token as well",
    )
    resident_session_days: Annotated[float, Field(gt=0, le=366)] = Field(
        default=30.0, description="How long a resident (PIN) login lasts on a device"
    )
    installer_session_h: Annotated[float, Field(gt=0, le=72)] = Field(
        default=8.0, description="How long an installer login lasts"
    )
    login_max_failures: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5, description="Failed logins (password, PIN, setup code) a client address "
        "may make before it backs off: 1 s, then twice as long after each further failure, "
        "at most login_window_s (429 with Retry-After)"
    )
    login_max_failures_total: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=20, description="Failed logins from all addresses together within "
        "login_window_s above which an address that has failed waits the whole window (a "
        "4-digit PIN must not be guessable from many addresses); an address that has not "
        "failed is never refused"
    )
    login_window_s: Annotated[int, Field(ge=10, le=86_400)] = 900
    max_body_bytes: Annotated[int, Field(ge=65_536, le=16_777_216)] = Field(
        default=1_048_576, description="Request bodies above this are refused with 413 "
        "(a whole site document is a few KB; MQTT's max_config_bytes is 256 KiB)"
    )
    history_step_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=60, description="Resolution of the 24 h chart (one averaged point per step)"
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Mark cookies Secure: auto = when the request came over HTTPS",
    )

    tls_cert_file: str | None = Field(
        default=None, description="PEM certificate (chain): serve HTTPS instead of HTTP; "
        "`hearth hmi cert` makes a self-signed one for the Pi's LAN name")
    tls_key_file: str | None = Field(
        default=None, description="PEM private key of tls_cert_file (readable by the service "
        "only)")

    @field_validator("auth_store_path", "tls_cert_file", "tls_key_file")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not PurePosixPath(v).is_absolute():
            raise ValueError("must be an absolute path")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together (both or neither)")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    def auth_store(self, data_dir: str) -> str:
        """The auth store in use (the explicit one, or hmi-auth.json under data_dir)."""
        if self.auth_store_path is not None:
            return self.auth_store_path
        return str(PurePosixPath(data_dir) / "hmi-auth.json")
