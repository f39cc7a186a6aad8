"""Modbus emulators for the HIL rig: the shipped register maps served by pymodbus servers
(TCP on a free port, RTU over a socat pty pair), fed by the plant model, with faults."""

from hil.modbus.feed import values_from_measurements
from hil.modbus.image import DeviceImage
from hil.modbus.pty import PtyPair
from hil.modbus.server import EmulatedDevice, Faults, ModbusEmulator

__all__ = ["DeviceImage", "EmulatedDevice", "Faults", "ModbusEmulator", "PtyPair",
           "values_from_measurements"]
