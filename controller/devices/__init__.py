"""Modbus acquisition: register maps as data, shared connections, one poller per device."""
