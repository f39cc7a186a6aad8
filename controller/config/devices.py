"""Modbus devices of a site (grid meter, PV inverter, battery). Owned by the acquisition
layer (controller/devices); only the shape the site file needs lives here."""

from __future__ import annotations

from controller.config.base import Strict


class DeviceConfig(Strict):
    """One Modbus device. Fields are added by the acquisition layer."""

    name: str
