"""A bridge in its own process, fed a changing state every 100 ms (the service stand-in).

    python mqtt_bridge_child.py SITE.toml

Prints `connected` once the bridge is connected. SIGTERM stops it cleanly (offline is
published); SIGKILL is what the tests use to show the Last Will.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from controller.bridge import Bridge, CommandQueue, ConfigStore, MinerStatus, StateSnapshot


def main(path: str) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    bridge = Bridge(ConfigStore(path), CommandQueue())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bridge.start()
    if not bridge.wait_connected(30):
        print("not connected", flush=True)
        return 1
    print("connected", flush=True)
    tick = 0
    while not stop.wait(0.1):
        tick += 1
        bridge.publish_state(StateSnapshot(
            grid_power_w=-100.0 - tick % 5, pv_power_w=2000.0,
            miners={"s9": MinerStatus(power_w=800.0, state="running")}))
    bridge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
