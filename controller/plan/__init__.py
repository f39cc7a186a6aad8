"""The day-ahead plan (issue 11 part 5): an LP over prices and forecasts that sets the tank
target and a floor on the miners' power; the PID loops handle the minute-to-minute error.
See docs/plan.md."""
