"""The controller's side of the satellite board: its telemetry as readings, the heartbeat."""
