"""The DS18B20 sensors on one 1-Wire bus, by role: tank top/middle/bottom, supply/return.

Non-blocking: a cycle starts a conversion on every sensor at once (Skip ROM + Convert T),
and reads each scratchpad `conversion_ms` later (750 ms at 12 bits, datasheet Table 2) on
a later tick, so the main loop never sleeps through a conversion.

A reading is rejected, and the role keeps its last good value until that is older than
`max_age_ms`, when the bus does not answer (no presence pulse: disconnected), the
scratchpad fails its CRC, reads all ones or all zeros, or holds the 85 °C power-on value.
That value is accepted only when the same sensor read at least `POWER_ON_TRUST_C` just
before it (a tank really at 85 °C); otherwise it means the sensor reset or browned out.
"""

from hsat.ds18b20 import POWER_ON_RAW, SensorFault, decode_scratchpad

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hsat.log import Log

ROLES = ("top", "middle", "bottom", "supply", "return")
POWER_ON_TRUST_C = 82.0


def _classify(err: Exception) -> "tuple[str, str]":
    """Map a driver exception to (code, reason). The drivers raise bare exceptions."""
    name = type(err).__name__
    text = str(err)
    if name == "OneWireError":
        return "no_presence", "no presence pulse: sensor or bus disconnected"
    if "CRC" in text:
        return "crc", "CRC error in scratchpad (noise or a long cable)"
    return "bus", "{}: {}".format(name, text or "1-Wire bus error")


class _Role:
    def __init__(self, rom: bytes) -> None:
        self.rom = rom
        self.temp_c: "float | None" = None
        self.good_ms: "int | None" = None
        self.fault: "str | None" = "no_reading"
        self.fault_reason = "no reading yet"
        self.fault_count = 0
        self.logged_fault: "str | None" = None


class TankSensors:
    def __init__(
        self,
        ds: "Any",
        roms: "dict[str, bytes]",
        log: "Log",
        sample_period_ms: int = 2000,
        conversion_ms: int = 750,
        max_age_ms: int = 6000,
    ) -> None:
        self.ds = ds  # a ds18x20.DS18X20 (or anything with convert_temp/read_scratch)
        self.log = log
        self.roles: "dict[str, _Role]" = {}
        for role, rom in roms.items():
            self.roles[role] = _Role(rom)
        self.sample_period_ms = sample_period_ms
        self.conversion_ms = conversion_ms
        self.max_age_ms = max_age_ms
        self._read_at_ms: "int | None" = None
        self._next_start_ms = 0
        self.cycles = 0
        self.last_cycle_ms: "int | None" = None

    def poll(self, now_ms: int) -> bool:
        """Advance the conversion cycle; True when a cycle finished (good or not) now."""
        if self._read_at_ms is None:
            if now_ms < self._next_start_ms:
                return False
            self._next_start_ms = now_ms + self.sample_period_ms
            try:
                self.ds.convert_temp()
            except Exception as err:
                code, reason = _classify(err)
                for role in self.roles.values():
                    self._fault(role, now_ms, code, "convert: " + reason)
                self._finish(now_ms)
                return True
            self._read_at_ms = now_ms + self.conversion_ms
            return False
        if now_ms < self._read_at_ms:
            return False
        self._read_at_ms = None
        for name, role in self.roles.items():
            self._read(name, role, now_ms)
        self._finish(now_ms)
        return True

    def _finish(self, now_ms: int) -> None:
        self.cycles += 1
        self.last_cycle_ms = now_ms

    def _read(self, name: str, role: _Role, now_ms: int) -> None:
        try:
            buf = bytes(self.ds.read_scratch(role.rom))
        except Exception as err:
            code, reason = _classify(err)
            if code == "crc":
                # The driver raises before returning the buffer; all ones in it means no
                # sensor drove the line (the pull-up): disconnected, not noise.
                got = getattr(self.ds, "buf", None)
                if got is not None and len(got) == 9 and all(b == 0xFF for b in got):
                    code, reason = "disconnected", "disconnected: no answer (reads all ones)"
            self._fault(role, now_ms, code, reason, name)
            return
        try:
            raw, temp_c = decode_scratchpad(buf)
        except SensorFault as fault:
            self._fault(role, now_ms, fault.code, fault.reason, name)
            return
        if raw == POWER_ON_RAW:
            fresh = self.value(name, now_ms)
            if fresh is None or fresh < POWER_ON_TRUST_C:
                self._fault(role, now_ms, "power_on_85",
                            "85.0 °C is the power-on value: the sensor reset before converting",
                            name)
                return
        if role.logged_fault is not None:
            self.log.info("sensor {}: valid again ({:.2f} °C) after {} fault(s)".format(
                name, temp_c, role.fault_count))
            role.logged_fault = None
        role.temp_c = temp_c
        role.good_ms = now_ms
        role.fault = None
        role.fault_reason = ""
        role.fault_count = 0

    def _fault(self, role: _Role, now_ms: int, code: str, reason: str,
               name: str = "") -> None:
        role.fault = code
        role.fault_reason = reason
        role.fault_count += 1
        if role.logged_fault != code:  # log each new kind of fault once, not every cycle
            label = name or "bus"
            self.log.warn("sensor {}: reading rejected ({}): {}".format(label, code, reason))
            role.logged_fault = code

    def value(self, name: str, now_ms: int) -> "float | None":
        """The last good temperature, or None if there is none younger than max_age_ms."""
        role = self.roles.get(name)
        if role is None or role.good_ms is None or role.temp_c is None:
            return None
        if now_ms - role.good_ms > self.max_age_ms:
            return None
        return role.temp_c

    def faults(self, now_ms: int) -> "dict[str, str]":
        """Roles without a usable value -> why (the latest fault, or 'stale')."""
        out: "dict[str, str]" = {}
        for name, role in self.roles.items():
            if self.value(name, now_ms) is None:
                out[name] = role.fault_reason or "no valid reading for {} ms".format(
                    self.max_age_ms)
        return out

    def status(self, now_ms: int) -> "dict[str, dict[str, Any]]":
        """Per role, for telemetry: temp_c and age_ms, or the fault."""
        out: "dict[str, dict[str, Any]]" = {}
        for name, role in self.roles.items():
            entry: "dict[str, Any]" = {}
            value = self.value(name, now_ms)
            if value is not None and role.good_ms is not None:
                entry["temp_c"] = round(value, 2)
                entry["age_ms"] = now_ms - role.good_ms
            if role.fault is not None:
                entry["fault"] = role.fault
                entry["reason"] = role.fault_reason
            out[name] = entry
        return out
