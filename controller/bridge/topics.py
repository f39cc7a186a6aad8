"""Topic names of one site (the contract in DESIGN.md: hearth/<site_id>/...)."""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "hearth"


@dataclass(frozen=True)
class Topics:
    site_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site_id}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    def state(self, suffix: str) -> str:
        return f"{self.base}/state/{suffix}"

    @property
    def state_filter(self) -> str:
        return f"{self.base}/state/#"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    @property
    def cmd_filter(self) -> str:
        """One level only, so our own cmd/<name>/result answers do not come back to us."""
        return f"{self.base}/cmd/+"

    def cmd_result(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/result"

    def config(self, op: str) -> str:
        return f"{self.base}/config/{op}"

    @property
    def config_result(self) -> str:
        return f"{self.base}/config/result"

    @property
    def reply_prefix(self) -> str:
        """MQTT v5 response topics must lie under here (so the ACL can scope them)."""
        return f"{self.base}/reply/"

    def reply(self, username: str, client_id: str) -> str:
        return f"{self.reply_prefix}{username}/{client_id}"

    def discovery_topic(self, device_id: str) -> str:
        return f"{self.discovery_prefix}/device/{device_id}/config"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"
