"""The firmware's logic running as the satellite in real time, in a thread, against a real
broker: fake board I/O (machine, onewire, ds18x20 from fw_fakes), real MQTT (paho under
the umqtt interface), real monotonic time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import fwkit

fwkit.use_fakes()

import fw_paho_umqtt  # noqa: E402
import fwharness  # noqa: E402
import onewire  # noqa: E402
from hsat import hw  # noqa: E402
from hsat.log import Log  # noqa: E402

LOOP_S = 0.02


class RealTicks(hw.Ticks):
    def ticks_ms(self) -> int:
        return int(time.monotonic() * 1000)

    def ticks_diff(self, a: Any, b: Any) -> int:
        return int(a) - int(b)


class AlwaysUp:
    def poll(self, now_ms: int) -> bool:
        return True


class LiveSatellite:
    """Start with `with LiveSatellite(...) as sat:`; `sat.sat` is the hsat.app.Satellite."""

    def __init__(self, root: Path, host: str, port: int, user: str, password: str,
                 temps: dict[str, float] | None = None, **settings: Any) -> None:
        fwharness.reset_all()
        for role, rom in fwharness.ROMS.items():
            onewire.BUS.sensors.append(
                onewire.FakeSensor(bytes.fromhex(rom), (temps or {}).get(role, 50.0)))
        cfg = fwharness.config(**settings)
        cfg["mqtt"] = {"host": host, "port": port, "user": user, "password": password,
                       "keepalive_s": 5}
        root.mkdir(parents=True, exist_ok=True)
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.ticks = RealTicks()
        self.sat = hw.build(cfg, fwharness.BOARDS, str(root), Log(self._log), self.ticks,
                            net=AlwaysUp(), make_client=fw_paho_umqtt.factory, cause="power_on")
        self.contactor_changes: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="satellite", daemon=True)
        self.error: BaseException | None = None

    def _log(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def _loop(self) -> None:
        last = self.sat.relays.contactor
        try:
            while not self._stop.is_set():
                now = self.ticks.update()
                self.sat.tick(now)
                if self.sat.relays.contactor != last:
                    last = self.sat.relays.contactor
                    self.contactor_changes.append((time.monotonic(), last))
                time.sleep(LOOP_S)
        except BaseException as err:  # surfaced by the test
            self.error = err
            raise

    def sensor(self, role: str) -> Any:
        rom = bytes.fromhex(fwharness.ROMS[role])
        return next(s for s in onewire.BUS.sensors if s.rom == rom)

    def logged(self, text: str) -> list[str]:
        with self.lock:
            return [line for line in self.lines if text in line]

    def __enter__(self) -> LiveSatellite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        link = self.sat.link
        if link.connected and link.client is not None:
            link.drop(0)
