"""Thin adapters from the board to the satellite logic, and the main loop.

Everything that imports `machine`, `network`, `onewire`, `ds18x20` or `umqtt` is here.
Pins come from boards.json (one file, a map per board); the rest from config.json.
"""

import sys
import time

import ds18x20
import machine
import onewire

from hsat.app import Satellite
from hsat.config import Config, ConfigError, board_pins
from hsat.log import Log
from hsat.store import Store, read_json

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOOP_MS = 50
CONNECT_TIMEOUT_S = 5  # below the watchdog timeout: a connect attempt must not trip it
WIFI_RETRY_MS = 30000
MAINTENANCE_FILE = "maintenance"  # present at boot: safe relays, no watchdog, REPL free


class Ticks:
    """MicroPython's wrapping millisecond ticks, turned into a monotonic count."""

    def __init__(self) -> None:
        self._last = self.ticks_ms()
        self.now_ms = 0

    def ticks_ms(self) -> "Any":
        return time.ticks_ms()

    def ticks_diff(self, a: "Any", b: "Any") -> int:
        return time.ticks_diff(a, b)

    def update(self) -> int:
        t = self.ticks_ms()
        self.now_ms += self.ticks_diff(t, self._last)
        self._last = t
        return self.now_ms

    def to_ms(self, ticks: "Any") -> int:
        """A tick stamp taken since the last update() as monotonic ms."""
        return self.now_ms + self.ticks_diff(ticks, self._last)


def reset_cause() -> str:
    cause = machine.reset_cause()
    names = {
        machine.PWRON_RESET: "power_on",
        machine.HARD_RESET: "hard_reset",
        machine.WDT_RESET: "watchdog",
        machine.DEEPSLEEP_RESET: "deepsleep",
        machine.SOFT_RESET: "soft_reset",
    }
    return names.get(cause, "cause {}".format(cause))


class Relays:
    """Two relay outputs. Pins are created at their 'off' level so boot never pulses them."""

    def __init__(self, pins: "dict[str, Any]", log: Log) -> None:
        self.log = log
        self._c_on = 0 if pins.get("contactor_active_low", False) else 1
        self._p_on = 0 if pins.get("pump_active_low", False) else 1
        self.contactor_pin = machine.Pin(pins["contactor"], machine.Pin.OUT, value=1 - self._c_on)
        self.pump_pin = machine.Pin(pins["pump"], machine.Pin.OUT, value=1 - self._p_on)
        self.contactor = False
        self.pump = False

    def set(self, contactor: bool, pump: bool) -> None:
        if contactor != self.contactor:
            self.log.info("relay contactor -> {}".format("on" if contactor else "off"))
        if pump != self.pump:
            self.log.info("relay pump -> {}".format("on" if pump else "off"))
        # Written every tick, not only on change: a glitch or a stray write cannot persist.
        self.contactor_pin.value(self._c_on if contactor else 1 - self._c_on)
        self.pump_pin.value(self._p_on if pump else 1 - self._p_on)
        self.contactor, self.pump = contactor, pump


class PulseCounter:
    """Counts falling edges of the flow meter's open-collector/reed output in an IRQ."""

    def __init__(self, pin_id: "Any", debounce_ms: int, ticks: Ticks) -> None:
        self.ticks = ticks
        self.debounce_ms = debounce_ms
        self.count = 0
        self.last_ticks: "Any" = 0
        self.seen = False
        self.pin = machine.Pin(pin_id, machine.Pin.IN, machine.Pin.PULL_UP)
        self.pin.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._irq, hard=True)

    def _irq(self, pin: "Any") -> None:
        # Hard IRQ: no allocation. Small ints and existing attributes only.
        t = self.ticks.ticks_ms()
        if self.seen and self.ticks.ticks_diff(t, self.last_ticks) < self.debounce_ms:
            return
        self.last_ticks = t
        self.seen = True
        self.count += 1

    def snapshot(self, now_ms: int) -> "tuple[int, int | None]":
        state = machine.disable_irq()
        count, last, seen = self.count, self.last_ticks, self.seen
        machine.enable_irq(state)
        return count, (self.ticks.to_ms(last) if seen else None)


class WifiNet:
    """Station mode; connect() is non-blocking on ESP32 and Pico W, re-tried while down."""

    def __init__(self, ssid: str, password: str, log: Log) -> None:
        import network

        self.log = log
        self.ssid = ssid
        self.password = password
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        self._next_ms = 0
        self._up = False

    def poll(self, now_ms: int) -> bool:
        up = bool(self.wlan.isconnected())
        if up != self._up:
            self.log.info("wifi: {}".format("connected" if up else "down"))
            self._up = up
        if not up and now_ms >= self._next_ms:
            self._next_ms = now_ms + WIFI_RETRY_MS
            try:
                self.wlan.disconnect()
                self.wlan.connect(self.ssid, self.password)
            except OSError as err:
                self.log.warn("wifi: connect to {!r} failed: {}".format(self.ssid, err))
        return up


class UmqttClient:
    """umqtt.simple with a connect timeout (MicroPython >= 1.23), the shape Link expects."""

    def __init__(self, client_id: str, host: str, port: int, user: "str | None",
                 password: "str | None", keepalive_s: int) -> None:
        from umqtt.simple import MQTTClient

        self.c = MQTTClient(client_id, host, port=port, user=user, password=password,
                            keepalive=keepalive_s)

    @property
    def sock(self) -> "Any":
        return self.c.sock

    def set_callback(self, f: "Any") -> None:
        self.c.set_callback(f)

    def set_last_will(self, topic: str, msg: bytes, retain: bool, qos: int) -> None:
        self.c.set_last_will(topic, msg, retain, qos)

    def connect(self) -> None:
        self.c.connect(True, CONNECT_TIMEOUT_S)

    def subscribe(self, topic: str, qos: int) -> None:
        self.c.subscribe(topic, qos)

    def publish(self, topic: str, msg: bytes, retain: bool, qos: int) -> None:
        self.c.publish(topic, msg, retain, qos)

    def check_msg(self) -> "Any":
        return self.c.check_msg()  # type: ignore[no-untyped-call]

    def ping(self) -> None:
        self.c.ping()


def make_umqtt(client_id: str, host: str, port: int, user: "str | None",
               password: "str | None", keepalive_s: int) -> UmqttClient:
    return UmqttClient(client_id, host, port, user, password, keepalive_s)


class _NoWatchdog:
    def feed(self) -> None:
        pass


def build(
    config: "Any",
    boards: "Any",
    root: str,
    log: Log,
    ticks: Ticks,
    net: "Any" = None,
    make_client: "Any" = None,
    cause: "str | None" = None,
) -> Satellite:
    """The satellite on this board's pins (no watchdog yet: `run` starts it)."""
    cfg = Config(config, sys.platform)
    pins = board_pins(boards, cfg.board)
    ds = ds18x20.DS18X20(onewire.OneWire(machine.Pin(pins["onewire"])))
    relays = Relays(pins, log)
    relays.set(False, bool(cfg.settings["safe_pump_on"]))
    pulses = PulseCounter(pins["flow_pulse"], int(cfg.pulse_debounce_ms), ticks)
    if net is None:
        net = WifiNet(cfg.wifi_ssid, cfg.wifi_password, log)
    return Satellite(cfg, log, Store(root, log), ds, pulses, relays, _NoWatchdog(), net,
                     make_client or make_umqtt, ticks.update(), cause or reset_cause())


def _failsafe(boards: "Any", config: "Any", log: Log, problems: "list[str]") -> None:
    """Bad config: hold the contactor off and the pump on, and say why, forever."""
    try:
        board = config.get("board", "rp2" if sys.platform == "rp2" else "esp32")
        pins = board_pins(boards, board)
        relays = Relays(pins, log)
        relays.set(False, True)
    except Exception as err:
        log.error("failsafe: cannot even set the relays: {}".format(err))
    while True:
        for p in problems:
            log.error("config: {}".format(p))
        log.error("config.json is invalid: contactor held off; fix it and reset the board")
        time.sleep(10)


def _exists(path: str) -> bool:
    import os

    try:
        os.stat(path)
        return True
    except OSError:
        return False


def run(root: str = "") -> None:
    """The board's main loop (main.py calls this)."""
    log = Log()
    prefix = root.rstrip("/") + "/" if root else ""
    boards = read_json(prefix + "boards.json")
    if _exists(prefix + MAINTENANCE_FILE):
        log.warn("maintenance mode: relays safe, no watchdog; delete '{}' and reset to run"
                 .format(MAINTENANCE_FILE))
        config: "Any" = {}
        try:
            config = read_json(prefix + "config.json")
        except Exception:
            pass
        try:
            board = config.get("board", "rp2" if sys.platform == "rp2" else "esp32")
            Relays(board_pins(boards, board), log).set(False, True)
        except Exception as err:
            log.error("maintenance: {}".format(err))
        return
    ticks = Ticks()
    try:
        config = read_json(prefix + "config.json")
    except Exception as err:
        config = {}
        _failsafe(boards, config, log, ["config.json: cannot read it ({})".format(err)])
    try:
        sat = build(config, boards, root, log, ticks)
    except ConfigError as err:
        _failsafe(boards, config, log, err.problems)
        return
    sat.wdt = machine.WDT(timeout=int(sat.cfg.wdt_timeout_ms))
    now = 0
    try:
        while True:
            now = ticks.update()
            try:
                sat.tick(now)
            except Exception as err:
                # Not fed this time; if it keeps failing the watchdog resets the board.
                log.error("tick failed: {}: {}".format(type(err).__name__, err))
                try:
                    sat.relays.set(False, bool(sat.settings["safe_pump_on"]))
                except Exception:
                    pass
            time.sleep_ms(LOOP_MS)
    except KeyboardInterrupt:
        # mpremote (deploy, REPL) interrupts: keep the counters, leave the relays safe.
        # The watchdog keeps running and resets the board unless deploy reboots it first.
        sat.shutdown(now)
        raise
