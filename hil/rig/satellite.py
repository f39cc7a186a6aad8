"""The satellite in the rig: the firmware's own logic (firmware/hsat, unchanged) on CPython.

`hsat.app.Satellite` is the object the board's main loop ticks (hw.build makes it on the
board); here it is built with the rig's hardware instead of the board's pins:

- the 1-Wire bus: DS18B20s emulated at the scratchpad level (the micropython-lib
  `ds18x20` driver's contract: Skip ROM + Convert T latches the temperature, Read
  Scratchpad returns 9 bytes, a bad CRC-8 raises `Exception("CRC error")`, no presence
  pulse raises `OneWireError`). The tank sensors read the plant's tank temperature.
  Faults per sensor: `crc` (a flipped bit), `power_on` (the 85 °C reset register),
  `absent` (nobody drives the line: all ones);
- the relays: two booleans; the plant reads the contactor, which feeds the tank miners;
- MQTT: paho-mqtt behind umqtt.simple's interface (blocking connect, `check_msg()`
  polling, no background thread), to the rig's broker with the board's own account;
- time: the monotonic clock, ticked every 50 ms like the board's loop (hw.LOOP_MS).

It runs in a thread so a blocking connect never stalls the plant's event loop.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

# The 1-Wire CRC of the controller side, not the firmware's own: an emulated sensor must
# not agree with the firmware by construction.
from controller.satellite.cli import crc8
from hil.rig.scenario import ROOT

FIRMWARE = ROOT / "firmware"
LOOP_S = 0.05
CONNECT_TIMEOUT_S = 5.0
ROMS = {  # valid DS18B20 ROM codes (family 0x28, CRC-8 in the last byte)
    "top": "28ff641e0f000034",
    "middle": "28ff641e0f00016a",
    "bottom": "28ff641e0f000288",
}
OFFSETS_C = {"top": 0.0, "middle": -3.0, "bottom": -8.0}  # a stratified tank, top hottest
SENSOR_MODES = ("ok", "crc", "power_on", "absent")
POWER_ON_RAW = 0x0550  # the DS18B20's temperature register before a conversion (+85 °C)


def _hsat(module: str) -> Any:
    """A firmware module, imported from firmware/ (it is not a package of this project)."""
    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))
    return importlib.import_module(f"hsat.{module}")


class OneWireError(Exception):
    """No presence pulse after a reset (the name the firmware's classifier looks for)."""


class EmulatedSensor:
    def __init__(self, rom: bytes, temp_c: Callable[[], float]) -> None:
        self.rom = rom
        self.temp_c = temp_c
        self.mode = "ok"
        self.latched_raw: int | None = None  # set by Convert T

    def scratchpad(self) -> bytes:
        raw = POWER_ON_RAW if self.mode == "power_on" or self.latched_raw is None else (
            self.latched_raw)
        body = bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
        pad = bytearray(body + bytes([crc8(body)]))
        if self.mode == "crc":
            pad[0] ^= 0x04  # one bit flipped on the wire
        return bytes(pad)


class EmulatedBus:
    """`ds18x20.DS18X20` over emulated sensors."""

    def __init__(self, sensors: list[EmulatedSensor]) -> None:
        self.sensors = {s.rom: s for s in sensors}
        self.buf = bytearray(9)
        self.conversions = 0

    def convert_temp(self) -> None:
        present = [s for s in self.sensors.values() if s.mode != "absent"]
        if not present:
            raise OneWireError()
        self.conversions += 1
        for s in present:
            s.latched_raw = None if s.mode == "power_on" else round(s.temp_c() * 16) & 0xFFFF

    def read_scratch(self, rom: bytes) -> bytearray:
        s = self.sensors.get(bytes(rom))
        data = s.scratchpad() if s is not None and s.mode != "absent" else b"\xff" * 9
        self.buf[:] = data
        if crc8(bytes(self.buf)) != 0:
            raise Exception("CRC error")
        return self.buf


class Relays:
    def __init__(self, on_change: Callable[[bool, bool], None]) -> None:
        self.contactor = False
        self.pump = False
        self._on_change = on_change

    def set(self, contactor: bool, pump: bool) -> None:
        changed = (contactor, pump) != (self.contactor, self.pump)
        self.contactor, self.pump = contactor, pump
        if changed:
            self._on_change(contactor, pump)


class _NoPulses:
    def snapshot(self, now_ms: int) -> tuple[int, int | None]:
        return 0, None


class _Watchdog:
    def __init__(self) -> None:
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


class _Net:
    """The board's Wi-Fi: `up = False` is a dropped network (the link closes, no DISCONNECT)."""

    def __init__(self) -> None:
        self.up = True

    def poll(self, now_ms: int) -> bool:
        return self.up


class _Sock:
    def __init__(self, owner: PahoUmqtt) -> None:
        self.owner = owner

    def close(self) -> None:
        """Drop TCP without DISCONNECT (the broker then publishes the Last Will)."""
        sock = self.owner.c.socket()
        if sock is not None:
            sock.close()
        self.owner.alive = False


class PahoUmqtt:
    """umqtt.simple.MQTTClient's interface over paho's manual loop (MQTT 3.1.1)."""

    def __init__(self, client_id: str, host: str, port: int, user: str | None,
                 password: str | None, keepalive_s: int) -> None:
        self.host, self.port, self.keepalive_s = host, port, keepalive_s
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=client_id, protocol=mqtt.MQTTv311)
        if user is not None:
            self.c.username_pw_set(user, password)
        self.cb: Callable[[bytes, bytes], None] | None = None
        self.queue: list[tuple[bytes, bytes]] = []
        self.connack: Any = None
        self.suback = False
        self.alive = False
        self.sock: _Sock | None = None
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.queue.append((m.topic.encode(),
                                                               bytes(m.payload)))
        self.c.on_subscribe = lambda *a: setattr(self, "suback", True)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc

    def _pump(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise OSError(110, f"timed out waiting for {what}")
            if self.c.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError(-1, f"connection lost waiting for {what}")

    def set_callback(self, f: Callable[[bytes, bytes], None]) -> None:
        self.cb = f

    def set_last_will(self, topic: str, msg: bytes, retain: bool, qos: int) -> None:
        self.c.will_set(topic, msg, qos=qos, retain=retain)

    def connect(self) -> None:
        try:
            self.c.connect(self.host, self.port, self.keepalive_s)
        except OSError:
            raise
        except Exception as err:  # paho raises its own errors for some failures
            raise OSError(str(err)) from err
        self._pump(lambda: self.connack is not None, "CONNACK")
        if self.connack.is_failure:
            raise OSError(f"broker refused: {self.connack}")
        self.alive = True
        self.sock = _Sock(self)

    def subscribe(self, topic: str, qos: int) -> None:
        self.suback = False
        self.c.subscribe(topic, qos)
        self._pump(lambda: self.suback, "SUBACK")

    def publish(self, topic: str, msg: bytes, retain: bool, qos: int) -> None:
        if not self.alive:
            raise OSError(-1, "not connected")
        if self.c.publish(topic, msg, qos=qos, retain=retain).rc != mqtt.MQTT_ERR_SUCCESS:
            raise OSError(-1, "publish failed")
        if self.c.loop_write() != mqtt.MQTT_ERR_SUCCESS:
            raise OSError(-1, "write failed")

    def check_msg(self) -> int | None:
        if not self.alive:
            raise OSError(-1, "not connected")
        if not self.queue and self.c.loop(timeout=0.0) != mqtt.MQTT_ERR_SUCCESS:
            self.alive = False
            raise OSError(-1, "connection lost")
        if not self.queue:
            return None
        topic, payload = self.queue.pop(0)
        if self.cb is not None:
            self.cb(topic, payload)
        return 0x30

    def ping(self) -> None:
        if not self.alive:
            raise OSError(-1, "not connected")  # paho's loop() sends PINGREQ when due


def board_settings(controller_satellite: dict[str, Any], tank_max_c: float) -> dict[str, Any]:
    """The board's provisioned settings (config.json): what the site's [satellite] section
    would push (the controller pushes it again on connect) plus a 1 s sample period."""
    sat = controller_satellite
    return {
        "heartbeat_timeout_s": float(sat.get("heartbeat_timeout_s", 30.0)),
        "sensor_fault_s": float(sat.get("sensor_fault_s", 10.0)),
        "telemetry_period_s": float(sat.get("telemetry_period_s", 5.0)),
        "hysteresis_c": float(sat.get("hysteresis_c", 5.0)),
        "tank_max_c": float(sat.get("tank_max_c", min(tank_max_c + 2.0, 98.0))),
        "cutoff_sensors": ["top"], "sample_period_s": 1.0, "safe_pump_on": True,
    }


class RigSatellite:
    """The firmware logic ticking in a thread; `contactor` is what the plant reads."""

    def __init__(self, workdir: Path, *, site_id: str, sat_id: str, host: str, port: int,
                 user: str, password: str, tank_c: Callable[[], float],
                 settings: dict[str, Any], clock: Callable[[], float]) -> None:
        app, config, log_mod, store = (_hsat(m) for m in ("app", "config", "log", "store"))
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.clock = clock  # the rig's clock (seconds since the scenario started)
        self._log_f = (workdir / "satellite.log").open("a", buffering=1)
        self.lock = threading.Lock()
        self.lines: list[str] = []
        self.contactor_changes: list[tuple[float, bool]] = []
        def reads(offset_c: float) -> Callable[[], float]:
            return lambda: tank_c() + offset_c

        self.sensors = {role: EmulatedSensor(bytes.fromhex(rom), reads(OFFSETS_C[role]))
                        for role, rom in ROMS.items()}
        self.bus = EmulatedBus(list(self.sensors.values()))
        self.relays = Relays(self._relays_changed)
        self.net = _Net()
        cfg = config.Config({
            "site_id": site_id, "sat_id": sat_id, "board": "esp32",
            "wifi": {"ssid": "hil-rig", "password": ""},
            "mqtt": {"host": host, "port": port, "user": user, "password": password,
                     "keepalive_s": 5},
            "sensors": dict(ROMS), "settings": settings,
        }, "esp32")
        self._t0_ms = int(time.monotonic() * 1000)
        log = log_mod.Log(self._log)
        self.sat: Any = app.Satellite(cfg, log, store.Store(str(workdir), log), self.bus,
                                      _NoPulses(), self.relays, _Watchdog(), self.net,
                                      PahoUmqtt, 0, "power_on")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hil-satellite", daemon=True)
        self.error: BaseException | None = None

    @property
    def contactor(self) -> bool:
        return self.relays.contactor

    def _log(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
        self._log_f.write(f"{self.clock():8.2f} {line}\n")

    def _relays_changed(self, contactor: bool, pump: bool) -> None:
        self.contactor_changes.append((self.clock(), contactor))
        self._log(f"RELAYS contactor {'on' if contactor else 'off'}, pump "
                  f"{'on' if pump else 'off'}")

    def set_sensor(self, role: str, mode: str) -> None:
        if mode not in SENSOR_MODES:
            raise ValueError(f"sensor mode {mode!r} is not one of {SENSOR_MODES}")
        self.sensors[role].mode = mode

    def logged(self, text: str) -> list[str]:
        with self.lock:
            return [ln for ln in self.lines if text in ln]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sat.tick(int(time.monotonic() * 1000) - self._t0_ms)
            except Exception as err:  # as hsat.hw.run: relays safe, the watchdog not fed
                self.error = err
                self._log(f"ERROR tick raised {type(err).__name__}: {err}")
                self.relays.set(False, True)
            time.sleep(LOOP_S)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        link = self.sat.link
        if link.connected:
            link.drop(0)  # no DISCONNECT: the broker publishes the board's Last Will
        self._log_f.close()
