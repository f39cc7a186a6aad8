"""Traces: the time series `hearth sim` runs against (read, validate, build from real data)."""

from controller.trace.reader import Trace, iso_utc, parse_trace, read_trace

__all__ = ["Trace", "iso_utc", "parse_trace", "read_trace"]
