"""Local safety: what the relays do when the Pi, the network or a sensor cannot be trusted.

Rules, evaluated every tick, hard limits first:

- over-temperature: any cut-off sensor at or above `tank_max_c` -> contactor off, pump on
  (keep moving heat out of the miners' exchanger). It releases only when every cut-off
  sensor reads again and the hottest is at or below `tank_max_c - hysteresis_c`; then the
  controller's last command applies again.
- sensor fault: a cut-off sensor without a valid reading for `sensor_fault_s` -> the same
  as over-temperature (an unknown tank temperature may be a hot one).
- heartbeat: no message from the controller for `heartbeat_timeout_s` -> the safe state
  (contactor off, pump `safe_pump_on`) and the controller's last command is forgotten.
- boot: the safe state until the controller commands the relays; after a heartbeat loss,
  likewise until it commands them again.

Every trip and every release is logged and queued as an event (type "trip" or "release")
with its reason; the app sends them when the link is up and keeps them until the controller
acknowledges them.
"""

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hsat.log import Log


def _onoff(v: bool) -> str:
    return "on" if v else "off"


class Safety:
    def __init__(self, settings: "dict[str, Any]", log: "Log", now_ms: int = 0) -> None:
        self.settings = settings
        self.log = log
        self.desired: "tuple[bool, bool] | None" = None  # the controller's (contactor, pump)
        self.booting = True  # no relay command since boot
        self.last_contact_ms: "int | None" = None
        self.heartbeat_lost = False
        self.overtemp = False
        self.sensor_fault = False
        self._missing_since: "dict[str, int]" = {}
        self._boot_ms = now_ms
        self.events: "list[dict[str, Any]]" = []
        self.contactor = False
        self.pump = bool(settings["safe_pump_on"])

    # -- inputs from the controller ------------------------------------------------------

    def contact(self, now_ms: int) -> None:
        """Any valid message from the controller proves it alive (heartbeat or command)."""
        if self.heartbeat_lost and self.last_contact_ms is not None:
            gone_s = (now_ms - self.last_contact_ms) / 1000
            self.heartbeat_lost = False
            self._event(now_ms, "heartbeat_lost", False,
                        "controller back after {:.1f} s; relays stay in the safe state until "
                        "it commands them".format(gone_s))
        self.last_contact_ms = now_ms

    def command(self, now_ms: int, contactor: "bool | None", pump: "bool | None") -> None:
        """The controller's relay command. Interlocks may hold it; it is applied when they
        release (but a heartbeat loss forgets it)."""
        self.contact(now_ms)
        prev_c, prev_p = self.desired if self.desired is not None else (
            False, bool(self.settings["safe_pump_on"]))
        self.desired = (prev_c if contactor is None else contactor,
                        prev_p if pump is None else pump)
        self.booting = False
        self._outputs()

    def apply_settings(self, settings: "dict[str, Any]") -> None:
        self.settings = settings
        self._outputs()

    # -- the rules -----------------------------------------------------------------------

    def evaluate(self, now_ms: int, temps: "dict[str, float | None]",
                 faults: "dict[str, str]") -> None:
        s = self.settings
        timeout_ms = int(s["heartbeat_timeout_s"] * 1000)
        if (not self.heartbeat_lost and self.last_contact_ms is not None
                and now_ms - self.last_contact_ms > timeout_ms):
            self.heartbeat_lost = True
            self.desired = None
            self._event(now_ms, "heartbeat_lost", True,
                        "no heartbeat from the controller for {:.1f} s (timeout {} s): safe "
                        "state, contactor off, pump {}".format(
                            (now_ms - self.last_contact_ms) / 1000, s["heartbeat_timeout_s"],
                            _onoff(s["safe_pump_on"])))

        cutoff = s["cutoff_sensors"]
        hottest_role, hottest = "", -1000.0
        all_present = True
        for role in cutoff:
            t = temps.get(role)
            if t is None:
                all_present = False
                continue
            if t > hottest:
                hottest_role, hottest = role, t
        limit = s["tank_max_c"]
        release = limit - s["hysteresis_c"]
        if not self.overtemp and hottest_role and hottest >= limit:
            self.overtemp = True
            self._event(now_ms, "overtemp", True,
                        "tank {} {:.1f} °C >= tank_max_c {:.1f} °C: contactor off, pump on"
                        .format(hottest_role, hottest, limit), hottest)
        elif self.overtemp and all_present and hottest <= release:
            self.overtemp = False
            self._event(now_ms, "overtemp", False,
                        "tank {} back to {:.1f} °C <= {:.1f} °C (tank_max_c - hysteresis_c)"
                        .format(hottest_role, hottest, release), hottest)

        fault_ms = int(s["sensor_fault_s"] * 1000)
        bad: "list[str]" = []
        for role in cutoff:
            if temps.get(role) is not None:
                self._missing_since.pop(role, None)
                continue
            since = self._missing_since.get(role)
            if since is None:
                since = self._missing_since[role] = now_ms
            if now_ms - since >= fault_ms:
                bad.append(role)
        for role in list(self._missing_since):
            if role not in cutoff:
                del self._missing_since[role]
        if bad and not self.sensor_fault:
            self.sensor_fault = True
            detail = "; ".join("{}: {}".format(r, faults.get(r, "no valid reading"))
                               for r in bad)
            self._event(now_ms, "sensor_fault", True,
                        "no valid reading from cut-off sensor(s) {} for {} s ({}): contactor "
                        "off, pump on".format(", ".join(bad), s["sensor_fault_s"], detail))
        elif self.sensor_fault and not bad:
            self.sensor_fault = False
            self._event(now_ms, "sensor_fault", False, "cut-off sensors read valid values again")
        self._outputs()

    def _outputs(self) -> None:
        forced = self.overtemp or self.sensor_fault
        if self.desired is None:
            contactor, pump = False, bool(self.settings["safe_pump_on"])
        else:
            contactor, pump = self.desired
        if forced:
            contactor, pump = False, True
        self.contactor, self.pump = contactor, pump

    def held_by(self) -> "list[str]":
        """Interlocks overriding the controller right now."""
        out: "list[str]" = []
        if self.overtemp:
            out.append("overtemp")
        if self.sensor_fault:
            out.append("sensor_fault")
        return out

    def reasons(self) -> "list[str]":
        """Why the relays are not simply the controller's last command (empty: they are)."""
        out = self.held_by()
        if self.desired is None:
            if self.heartbeat_lost:
                out.append("heartbeat_lost")
            elif self.booting:
                out.append("boot")
            else:
                out.append("waiting_for_command")
        return out

    def _event(self, now_ms: int, code: str, active: bool, reason: str,
               value_c: "float | None" = None) -> None:
        event: "dict[str, Any]" = {"type": "trip" if active else "release", "code": code,
                                   "reason": reason, "uptime_ms": now_ms}
        if value_c is not None:
            event["value_c"] = round(value_c, 2)
        if active:
            self.log.warn("trip {}: {}".format(code, reason))
        else:
            self.log.info("release {}: {}".format(code, reason))
        self.events.append(event)

    def take_events(self) -> "list[dict[str, Any]]":
        out, self.events = self.events, []
        return out
