"""Schema revisions, oldest first: v0001 accounting core, v0002 telemetry + payouts."""
