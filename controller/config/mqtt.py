"""MQTT bridge settings of a site (broker, credentials reference, topics)."""

from __future__ import annotations

from controller.config.base import Strict


class MqttSection(Strict):
    """Fields are added by the MQTT bridge (controller/bridge)."""

    host: str = "localhost"
