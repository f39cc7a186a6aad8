"""The provisioning file (config.json) and the settings the controller may change.

`config.json` is written once per board at provisioning (Wi-Fi, broker, ids, sensor ROM
codes). `settings` are the tunables the controller may also set over MQTT (`cmd/config`);
an accepted change is stored on flash and wins over the file from then on. Validation
collects every problem, each naming the field and the reason; nothing is half-applied.
"""

from hsat.ds18b20 import parse_rom
from hsat.sensors import ROLES

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BOARDS = ("esp32", "rp2")

# name: (kind, default, low, high). Kinds: num, bool, roles.
SETTINGS: "dict[str, tuple[str, Any, float, float]]" = {
    "tank_max_c": ("num", 90.0, 30.0, 98.0),
    "hysteresis_c": ("num", 5.0, 0.5, 20.0),
    "heartbeat_timeout_s": ("num", 30.0, 1.0, 3600.0),
    "sensor_fault_s": ("num", 10.0, 1.0, 600.0),
    "litres_per_pulse": ("num", 1.0, 0.001, 1000.0),
    "flow_timeout_s": ("num", 60.0, 1.0, 3600.0),
    "telemetry_period_s": ("num", 5.0, 0.2, 3600.0),
    "sample_period_s": ("num", 2.0, 1.0, 60.0),
    "persist_period_s": ("num", 600.0, 10.0, 86400.0),
    "safe_pump_on": ("bool", True, 0.0, 0.0),
    "cutoff_sensors": ("roles", ["top"], 0.0, 0.0),
}


class ConfigError(Exception):
    """Every problem found, as 'field: reason' strings."""

    def __init__(self, problems: "list[str]") -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _is_num(v: "Any") -> bool:
    # bool is an int on CPython but not on MicroPython: refuse it explicitly on both.
    return not isinstance(v, bool) and isinstance(v, (int, float))


def _ident(v: "Any", max_len: int) -> bool:
    if not isinstance(v, str) or not 1 <= len(v) <= max_len:
        return False
    for i, ch in enumerate(v):
        ok = ("a" <= ch <= "z") or ("0" <= ch <= "9") or (i > 0 and ch in "-_")
        if not ok:
            return False
    return True


def default_settings() -> "dict[str, Any]":
    out: "dict[str, Any]" = {}
    for name, spec in SETTINGS.items():
        value = spec[1]
        out[name] = list(value) if isinstance(value, list) else value
    return out


def check_settings(
    update: "Any", base: "dict[str, Any]", roles: "list[str]", where: str = "settings"
) -> "dict[str, Any]":
    """`base` with `update` applied, or ConfigError naming every bad field."""
    problems: "list[str]" = []
    if not isinstance(update, dict):
        raise ConfigError(["{}: must be an object".format(where)])
    merged = dict(base)
    for name, value in update.items():
        path = "{}.{}".format(where, name)
        spec = SETTINGS.get(name)
        if spec is None:
            problems.append("{}: not a setting (known: {})".format(
                path, ", ".join(sorted(SETTINGS))))
            continue
        kind = spec[0]
        if kind == "num":
            if not _is_num(value):
                problems.append("{}: must be a number, got {!r}".format(path, value))
                continue
            if not spec[2] <= value <= spec[3]:
                problems.append("{}: {} is outside {}..{}".format(path, value, spec[2], spec[3]))
                continue
            merged[name] = float(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                problems.append("{}: must be true or false, got {!r}".format(path, value))
                continue
            merged[name] = value
        else:
            if not isinstance(value, list) or not value:
                problems.append("{}: must be a non-empty list of sensor roles".format(path))
                continue
            unknown = [r for r in value if r not in roles]
            if unknown:
                problems.append("{}: {} not among the installed sensors {}".format(
                    path, unknown, roles))
                continue
            merged[name] = list(value)
    if not problems:
        low = merged["tank_max_c"] - merged["hysteresis_c"]
        if low < 20.0:
            problems.append("{}.hysteresis_c: tank_max_c - hysteresis_c = {} must be at least "
                            "20 °C".format(where, low))
    if problems:
        raise ConfigError(problems)
    return merged


class Config:
    """A validated config.json."""

    def __init__(self, data: "Any", platform: str = "esp32") -> None:
        problems: "list[str]" = []
        if not isinstance(data, dict):
            raise ConfigError(["config: must be a JSON object"])
        known = ("site_id", "sat_id", "wifi", "mqtt", "board", "sensors", "settings",
                 "wdt_timeout_ms", "pulse_debounce_ms", "flow_meter_in")
        for key in data:
            if key not in known:
                problems.append("{}: unknown key (known: {})".format(key, ", ".join(known)))

        site_id, sat_id = data.get("site_id"), data.get("sat_id")
        self.site_id = site_id if isinstance(site_id, str) else ""
        self.sat_id = sat_id if isinstance(sat_id, str) else ""
        if not _ident(site_id, 64):
            problems.append("site_id: must be 1-64 of a-z, 0-9, - and _, starting with a "
                            "letter or digit, got {!r}".format(site_id))
        if not _ident(sat_id, 32):
            problems.append("sat_id: must be 1-32 of a-z, 0-9, - and _, starting with a "
                            "letter or digit, got {!r}".format(sat_id))

        self.board = data.get("board", "rp2" if platform == "rp2" else "esp32")
        if self.board not in BOARDS:
            problems.append("board: must be one of {}, got {!r}".format(BOARDS, self.board))

        wifi = data.get("wifi")
        self.wifi_ssid = ""
        self.wifi_password = ""
        if not isinstance(wifi, dict):
            problems.append("wifi: must be an object with ssid and password")
        else:
            ssid = wifi.get("ssid")
            if not isinstance(ssid, str) or not 1 <= len(ssid) <= 32:
                problems.append("wifi.ssid: must be a string of 1-32 characters")
            else:
                self.wifi_ssid = ssid
            pw = wifi.get("password", "")
            if not isinstance(pw, str) or len(pw) > 64:
                problems.append("wifi.password: must be a string of at most 64 characters")
            else:
                self.wifi_password = pw
            for key in wifi:
                if key not in ("ssid", "password"):
                    problems.append("wifi.{}: unknown key".format(key))

        mqtt = data.get("mqtt")
        self.mqtt_host = ""
        self.mqtt_port = 1883
        self.mqtt_user: "str | None" = None
        self.mqtt_password: "str | None" = None
        self.keepalive_s = 30
        if not isinstance(mqtt, dict):
            problems.append("mqtt: must be an object with at least host")
        else:
            host = mqtt.get("host")
            if not isinstance(host, str) or not host:
                problems.append("mqtt.host: must be a non-empty string")
            else:
                self.mqtt_host = host
            port = mqtt.get("port", 1883)
            if not _is_num(port) or int(port) != port or not 1 <= port <= 65535:
                problems.append("mqtt.port: must be an integer 1..65535, got {!r}".format(port))
            else:
                self.mqtt_port = int(port)
            user, pw = mqtt.get("user"), mqtt.get("password")
            if user is not None and not isinstance(user, str):
                problems.append("mqtt.user: must be a string")
            elif pw is not None and not isinstance(pw, str):
                problems.append("mqtt.password: must be a string")
            elif (user is None) != (pw is None):
                problems.append("mqtt.password: user and password go together")
            else:
                self.mqtt_user, self.mqtt_password = user, pw
            ka = mqtt.get("keepalive_s", 30)
            if not _is_num(ka) or int(ka) != ka or not 5 <= ka <= 3600:
                problems.append("mqtt.keepalive_s: must be an integer 5..3600, got {!r}"
                                .format(ka))
            else:
                self.keepalive_s = int(ka)
            for key in mqtt:
                if key not in ("host", "port", "user", "password", "keepalive_s"):
                    problems.append("mqtt.{}: unknown key".format(key))

        self.sensors: "dict[str, bytes]" = {}
        sensors = data.get("sensors")
        if not isinstance(sensors, dict) or not sensors:
            problems.append("sensors: must map roles ({}) to ROM codes".format(", ".join(ROLES)))
        else:
            seen: "dict[bytes, str]" = {}
            for role, text in sensors.items():
                if role not in ROLES:
                    problems.append("sensors.{}: unknown role (known: {})".format(
                        role, ", ".join(ROLES)))
                    continue
                try:
                    rom = parse_rom(text)
                except ValueError as err:
                    problems.append("sensors.{}: {}".format(role, err))
                    continue
                if rom in seen:
                    problems.append("sensors.{}: same ROM code as sensors.{}".format(
                        role, seen[rom]))
                    continue
                seen[rom] = role
                self.sensors[role] = rom

        self.wdt_timeout_ms = data.get("wdt_timeout_ms", 8000)
        if (not _is_num(self.wdt_timeout_ms) or int(self.wdt_timeout_ms) != self.wdt_timeout_ms
                or not 1000 <= self.wdt_timeout_ms <= 8388):
            problems.append("wdt_timeout_ms: must be an integer 1000..8388 (the RP2040's "
                            "limit), got {!r}".format(self.wdt_timeout_ms))
        self.pulse_debounce_ms = data.get("pulse_debounce_ms", 5)
        if (not _is_num(self.pulse_debounce_ms)
                or int(self.pulse_debounce_ms) != self.pulse_debounce_ms
                or not 0 <= self.pulse_debounce_ms <= 1000):
            problems.append("pulse_debounce_ms: must be an integer 0..1000, got {!r}".format(
                self.pulse_debounce_ms))
        self.flow_meter_in = data.get("flow_meter_in", "return")
        if self.flow_meter_in not in ("return", "supply"):
            problems.append("flow_meter_in: must be 'return' or 'supply', got {!r}".format(
                self.flow_meter_in))

        self.settings = default_settings()
        roles = list(self.sensors)
        cutoff_default = [r for r in ("top", "middle", "bottom") if r in roles][:1]
        if cutoff_default:
            self.settings["cutoff_sensors"] = cutoff_default
        try:
            self.settings = check_settings(data.get("settings", {}), self.settings, roles)
        except ConfigError as err:
            problems.extend(err.problems)
        if not problems:
            missing = [r for r in self.settings["cutoff_sensors"] if r not in roles]
            if missing:
                problems.append("settings.cutoff_sensors: {} not among the installed sensors "
                                "{} (install a tank sensor or list one)".format(missing, roles))
        if problems:
            raise ConfigError(problems)

    @property
    def roles(self) -> "list[str]":
        return list(self.sensors)


def board_pins(boards: "Any", board: str) -> "dict[str, Any]":
    """The pin map for `board` from boards.json, checked."""
    problems: "list[str]" = []
    if not isinstance(boards, dict) or not isinstance(boards.get(board), dict):
        raise ConfigError(["boards.json: has no pin map for board {!r}".format(board)])
    pins: "dict[str, Any]" = boards[board]
    for key in ("onewire", "flow_pulse", "contactor", "pump"):
        v: "Any" = pins.get(key)
        if not (_is_num(v) and int(v) == v) and not isinstance(v, str):
            problems.append("boards.json {}.{}: must be a pin number or name".format(board, key))
    for key in ("contactor_active_low", "pump_active_low"):
        if not isinstance(pins.get(key, False), bool):
            problems.append("boards.json {}.{}: must be true or false".format(board, key))
    if problems:
        raise ConfigError(problems)
    return pins
