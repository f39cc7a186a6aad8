"""Hearth satellite firmware (MicroPython): tank sensors, heat meter, relays, local safety.

The logic lives in plain modules that import nothing from the board (`machine`, `network`,
...): they run unchanged on CPython and MicroPython, which is how they are tested. Only
`hw.py` touches hardware, as a thin layer of adapters.
"""

VERSION = "0.1.0"
