"""The wall-tablet HMI: FastAPI app, live feed, wall and installer pages (docs/hmi.md)."""
