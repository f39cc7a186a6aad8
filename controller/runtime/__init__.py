"""The real-time service (`hearth run`): tick loop, ports to devices/miners/publishers."""
