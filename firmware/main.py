"""Board entry point: MicroPython runs main.py after boot.py."""

import hsat.hw

hsat.hw.run()
