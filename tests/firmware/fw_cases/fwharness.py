"""A satellite on fake hardware, for the firmware cases (runs on CPython and MicroPython).

The runner sets `ROOT` to a writable directory before the cases run. Each Rig gets a fresh
sub-directory for its flash files unless one is passed in (to simulate a reboot).
"""

import json
import os

import machine
import network
import onewire
from hsat import hw
from hsat.log import Log
from umqtt import simple

ROOT = "/tmp"
_n = [0]

ROMS = {
    "top": "28ff641e0f000034",
    "middle": "28ff641e0f00016a",
    "bottom": "28ff641e0f000288",
    "supply": "28ff641e0f0003d6",
    "return": "28ff641e0f000455",
}

BOARDS = {
    "esp32": {"onewire": 4, "flow_pulse": 27, "contactor": 26, "pump": 25},
    "rp2": {"onewire": 16, "flow_pulse": 17, "contactor": 18, "pump": 19,
            "contactor_active_low": True},
}


def fresh_dir():
    _n[0] += 1
    path = f"{ROOT}/rig{_n[0]}"
    os.mkdir(path)
    return path


def reset_all():
    machine.reset_fakes()
    network.reset_fakes()
    onewire.reset_fakes()
    simple.reset_fakes()


def config(**settings):
    s = {"heartbeat_timeout_s": 5.0, "sensor_fault_s": 4.0, "telemetry_period_s": 1.0,
         "sample_period_s": 1.0, "tank_max_c": 90.0, "hysteresis_c": 5.0,
         "litres_per_pulse": 1.0, "cutoff_sensors": ["top"], "safe_pump_on": True}
    for k in settings:
        s[k] = settings[k]
    return {
        "site_id": "demo", "sat_id": "tank1",
        "wifi": {"ssid": "lab", "password": "pw"},
        "mqtt": {"host": "127.0.0.1", "port": 1883, "keepalive_s": 30},
        "sensors": dict(ROMS),
        "settings": s,
    }


class FakeTicks(hw.Ticks):
    """Board ticks the test moves by hand."""

    def __init__(self, start=0):
        self.t = start
        hw.Ticks.__init__(self)

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


class Rig:
    def __init__(self, cfg=None, root=None, cause="power_on", temps=None, board="esp32",
                 keep_fakes=False):
        if not keep_fakes:
            reset_all()
        self.root = root or fresh_dir()
        self.lines = []
        self.log = Log(self.lines.append)
        self.ticks = FakeTicks()
        self.bus = onewire.BUS
        if not keep_fakes:
            t = temps or {}
            for role, rom in ROMS.items():
                self.bus.sensors.append(onewire.FakeSensor(bytes.fromhex(rom), t.get(role, 50.0)))
        self.broker = simple.BROKER
        cfg = cfg or config()
        cfg["board"] = board
        self.cfg = cfg
        self.sat = hw.build(cfg, BOARDS, self.root, self.log, self.ticks, cause=cause)
        self.wdt = machine.WDT(timeout=8000)
        self.sat.wdt = self.wdt
        pins = BOARDS[board]
        self.contactor_pin = machine.pins[pins["contactor"]]
        self.pump_pin = machine.pins[pins["pump"]]
        self.flow_pin = machine.pins[pins["flow_pulse"]]
        self.base = "hearth/demo/sat/tank1/"
        self.now = 0
        self.run(50)  # first tick: the link connects and subscribes

    # -- time -----------------------------------------------------------------------------

    def run(self, ms, step=50):
        """Advance board time by `ms`, ticking every `step` ms."""
        end = self.ticks.t + ms
        while self.ticks.t < end:
            self.ticks.t = min(self.ticks.t + step, end)
            self.now = self.ticks.update()
            self.sat.tick(self.now)

    def run_until(self, predicate, limit_ms, step=50):
        """Tick until predicate() holds; return the board time it took (or fail)."""
        start = self.ticks.t
        while not predicate():
            if self.ticks.t - start > limit_ms:
                raise AssertionError(f"condition not met within {limit_ms} ms")
            self.run(step, step)
        return self.ticks.t - start

    def pulses(self, n, every_ms, step=50):
        """n flow-meter pulses, one every `every_ms`, each seen by the next tick."""
        for _ in range(n):
            self.run(every_ms, step)
            self.flow_pin.fire()
        self.run(step, step)

    # -- sensors --------------------------------------------------------------------------

    def sensor(self, role):
        rom = bytes.fromhex(ROMS[role])
        for s in self.bus.sensors:
            if s.rom == rom:
                return s
        raise KeyError(role)

    def set_temp(self, role, temp_c):
        self.sensor(role).temp_c = temp_c

    # -- relays ---------------------------------------------------------------------------

    def contactor(self):
        return self.sat.relays.contactor

    def pump(self):
        return self.sat.relays.pump

    # -- the controller's side of MQTT ----------------------------------------------------

    def send(self, cmd, payload):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.broker.publish(self.base + "cmd/" + cmd, data)

    def heartbeat(self, seq=1):
        self.send("heartbeat", {"seq": seq})

    def command(self, contactor=None, pump=None, id="c1"):
        p = {"id": id}
        if contactor is not None:
            p["contactor"] = contactor
        if pump is not None:
            p["pump"] = pump
        self.send("relays", p)

    def published(self, suffix):
        return [json.loads(m.decode()) if m[:1] in (b"{", b"[") else m.decode()
                for m in self.broker.messages(self.base + suffix)]

    def acks(self, cmd=None):
        return [a for a in self.published("ack") if cmd is None or a.get("cmd") == cmd]

    def events(self, code=None):
        return [e for e in self.published("event") if code is None or e["code"] == code]

    def telemetry(self):
        t = self.published("telemetry")
        assert t, "no telemetry published"
        return t[-1]

    def logged(self, text, also=""):
        """Log lines containing `text` (and `also`, if given)."""
        return [line for line in self.lines if text in line and also in line]


def near(a, b, tol):
    return a is not None and abs(a - b) <= tol
