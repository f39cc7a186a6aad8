"""The satellite: one `tick(now_ms)` reads sensors and pulses, runs the safety rules,
drives the relays, talks to the controller and feeds the watchdog when all went well.

Time is a monotonic millisecond count passed in; hardware comes in as small objects
(see hw.py for the real ones and tests/firmware/fw_fakes for fakes), so the same code runs
on the board, on CPython and under MicroPython in Node.

Commands (JSON on cmd/<name>), each answered on `ack` with `ok` and, if refused, `error`:
  heartbeat  {"seq": int}
  relays     {"id": str|int, "contactor": bool, "pump": bool}   (either key may be left out)
  config     {"id": str|int, "settings": {name: value, ...}}      all or nothing, stored
  trip_ack   {"upto": int}   events with id <= upto are delivered; stop re-sending them
"""

import json

from hsat import VERSION
from hsat.config import check_settings
from hsat.heat import HeatMeter
from hsat.health import Health
from hsat.link import Link, base_topic
from hsat.safety import Safety
from hsat.sensors import TankSensors

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from hsat.config import Config
    from hsat.log import Log
    from hsat.store import Store

MAX_PENDING_EVENTS = 50
EVENT_RESEND_MS = 10000
CONVERSION_MS = 750  # DS18B20 at 12 bits


class CommandError(Exception):
    pass


def _id_of(data: "dict[str, Any]") -> "Any":
    v = data.get("id")
    if v is None or isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    raise CommandError("id: must be a string or an integer")


class Satellite:
    def __init__(
        self,
        cfg: "Config",
        log: "Log",
        store: "Store",
        ds: "Any",
        pulses: "Any",
        relays: "Any",
        wdt: "Any",
        net: "Any",
        make_client: "Callable[..., Any]",
        now_ms: int = 0,
        reset_cause: str = "power_on",
    ) -> None:
        self.cfg = cfg
        self.log = log
        self.store = store
        self.pulses = pulses
        self.relays = relays
        self.wdt = wdt
        self.net = net
        log.now_ms = now_ms

        self.settings = cfg.settings
        stored = store.load("settings")
        if stored is not None:
            try:
                self.settings = check_settings(stored, cfg.settings, cfg.roles, "stored settings")
            except Exception as err:
                log.warn("stored settings ignored, using config.json: {}".format(err))

        meta = store.load("meta") or {}
        self.boot = int(meta.get("boots", 0)) + 1
        store.save("meta", {"boots": self.boot})

        outbox = store.load("events") or {}
        self.pending: "list[dict[str, Any]]" = list(outbox.get("pending", []))
        self.next_event_id = int(outbox.get("next_id", 1))
        self.dropped_events = int(outbox.get("dropped", 0))

        counters = store.load("heat") or {}
        s = self.settings
        self.sensors = TankSensors(ds, cfg.sensors, log, self._ms(s["sample_period_s"]),
                                   CONVERSION_MS, self._max_age_ms())
        self.heat = HeatMeter(s["litres_per_pulse"], self._ms(s["flow_timeout_s"]),
                              int(counters.get("energy_j", 0)), int(counters.get("volume_ml", 0)),
                              cfg.flow_meter_in)
        self._heat_saved = self.heat.counters()
        self._heat_saved_ms = now_ms

        self.safety = Safety(self.settings, log, now_ms)
        relays.set(self.safety.contactor, self.safety.pump)  # safe state before anything else

        self.health = Health({
            "safety": 2000,
            "sensors": self._ms(s["sample_period_s"]) + CONVERSION_MS + 3000,
        }, now_ms)
        self._unhealthy_logged = False

        self.link = Link(base_topic(cfg.site_id, cfg.sat_id), make_client, log, cfg.mqtt_host,
                         cfg.mqtt_port, "hearth-sat-{}-{}".format(cfg.site_id, cfg.sat_id),
                         cfg.mqtt_user, cfg.mqtt_password, cfg.keepalive_s)
        self.acks: "list[dict[str, Any]]" = []
        self._telemetry_due_ms = now_ms
        self._events_sent_ms: "int | None" = None
        self.telemetry_seq = 0

        log.info("hearth satellite {} boot {} ({}), site {} sat {}".format(
            VERSION, self.boot, reset_cause, cfg.site_id, cfg.sat_id))
        if reset_cause == "watchdog":
            self._queue({"type": "notice", "code": "watchdog_reset", "uptime_ms": now_ms,
                         "reason": "the watchdog reset the board: its main loop had stopped "
                                   "being healthy"}, now_ms)
        self._queue({"type": "notice", "code": "boot", "uptime_ms": now_ms,
                     "reason": "boot {} ({}): relays in the safe state until the controller "
                               "commands them".format(self.boot, reset_cause)}, now_ms)

    @staticmethod
    def _ms(seconds: float) -> int:
        return int(seconds * 1000)

    def _max_age_ms(self) -> int:
        # Three sample periods: one missed read is tolerated, two are not.
        return int(self.settings["sample_period_s"] * 3000) + CONVERSION_MS

    # -- the loop ------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        self.log.now_ms = now_ms
        if self.sensors.poll(now_ms):
            self.health.ok("sensors", now_ms)
        temps: "dict[str, float | None]" = {}
        for role in self.sensors.roles:
            temps[role] = self.sensors.value(role, now_ms)
        faults = self.sensors.faults(now_ms)

        count, last_ms = self.pulses.snapshot(now_ms)
        self.heat.update(now_ms, count, last_ms, temps.get("supply"), temps.get("return"))

        just_connected = False
        msgs: "list[tuple[str, bytes]]" = []
        try:
            up = self.net.poll(now_ms)
            if not up and self.link.connected:
                self.link.drop(now_ms, OSError("network down"))
            just_connected = self.link.ensure(now_ms, up)
            msgs = self.link.poll(now_ms)
        except Exception as err:  # the link must never stop the safety path
            self.log.error("link: {}".format(err))
        for suffix, payload in msgs:
            self._command(now_ms, suffix, payload)

        self.safety.evaluate(now_ms, temps, faults)
        self.relays.set(self.safety.contactor, self.safety.pump)
        self.health.ok("safety", now_ms)
        for event in self.safety.take_events():
            self._queue(event, now_ms)

        try:
            self._publish(now_ms, just_connected)
        except Exception as err:
            self.log.error("publish: {}".format(err))
        self._persist_heat(now_ms, False)

        if self.health.healthy(now_ms):
            self.wdt.feed()
            self._unhealthy_logged = False
        elif not self._unhealthy_logged:
            self.log.error("watchdog not fed: {}".format(self.health.last_problem))
            self._unhealthy_logged = True

    # -- commands ------------------------------------------------------------------------

    def _command(self, now_ms: int, suffix: str, payload: bytes) -> None:
        if not suffix.startswith("cmd/"):
            return
        name = suffix[4:]
        ack: "dict[str, Any]" = {"cmd": name, "ok": False}
        try:
            try:
                data = json.loads(payload.decode())
            except (ValueError, UnicodeError) as err:
                raise CommandError("payload: not valid JSON ({})".format(err))
            if not isinstance(data, dict):
                raise CommandError("payload: must be a JSON object")
            ack["id"] = _id_of(data)
            if name == "heartbeat":
                self._cmd_heartbeat(now_ms, data, ack)
            elif name == "relays":
                self._cmd_relays(now_ms, data, ack)
            elif name == "config":
                self._cmd_config(now_ms, data, ack)
            elif name == "trip_ack":
                self._cmd_trip_ack(now_ms, data, ack)
            else:
                raise CommandError("unknown command {!r} (heartbeat, relays, config, trip_ack)"
                                   .format(name))
            ack["ok"] = True
        except CommandError as err:
            ack["error"] = str(err)
            self.log.warn("refused cmd/{}: {}".format(name, err))
        self.acks.append(ack)

    def _only(self, data: "dict[str, Any]", allowed: "tuple[str, ...]") -> None:
        extra = [k for k in data if k not in allowed]
        if extra:
            raise CommandError("{}: unknown field(s) (allowed: {})".format(
                ", ".join(sorted(extra)), ", ".join(allowed)))

    def _cmd_heartbeat(self, now_ms: int, data: "dict[str, Any]", ack: "dict[str, Any]") -> None:
        self._only(data, ("id", "seq"))
        seq = data.get("seq")
        if seq is None or isinstance(seq, bool) or not isinstance(seq, int):
            raise CommandError("seq: must be an integer")
        ack["seq"] = seq
        self.safety.contact(now_ms)

    def _cmd_relays(self, now_ms: int, data: "dict[str, Any]", ack: "dict[str, Any]") -> None:
        self._only(data, ("id", "contactor", "pump"))
        contactor, pump = data.get("contactor"), data.get("pump")
        if contactor is None and pump is None:
            raise CommandError("contactor, pump: give at least one")
        for field, value in (("contactor", contactor), ("pump", pump)):
            if value is not None and not isinstance(value, bool):
                raise CommandError("{}: must be true or false, got {!r}".format(field, value))
        self.safety.command(now_ms, contactor, pump)
        self.relays.set(self.safety.contactor, self.safety.pump)
        ack["contactor"] = self.safety.contactor
        ack["pump"] = self.safety.pump
        ack["held_by"] = self.safety.held_by()

    def _cmd_config(self, now_ms: int, data: "dict[str, Any]", ack: "dict[str, Any]") -> None:
        self._only(data, ("id", "settings"))
        if "settings" not in data:
            raise CommandError("settings: missing")
        try:
            merged = check_settings(data["settings"], self.settings, self.cfg.roles)
        except Exception as err:
            raise CommandError(str(err))
        self.safety.contact(now_ms)
        if merged != self.settings:
            self.store.save("settings", merged)
            self._apply_settings(merged)
            self.log.info("settings changed: {}".format(
                ", ".join("{}={}".format(k, merged[k]) for k in sorted(merged)
                          if merged[k] != self.cfg.settings.get(k))))
        ack["settings"] = self.settings

    def _apply_settings(self, s: "dict[str, Any]") -> None:
        self.settings = s
        self.safety.apply_settings(s)
        self.sensors.sample_period_ms = self._ms(s["sample_period_s"])
        self.sensors.max_age_ms = self._max_age_ms()
        self.heat.litres_per_pulse = s["litres_per_pulse"]
        self.heat.flow_timeout_ms = self._ms(s["flow_timeout_s"])
        self.health.limits_ms["sensors"] = self._ms(s["sample_period_s"]) + CONVERSION_MS + 3000

    def _cmd_trip_ack(self, now_ms: int, data: "dict[str, Any]", ack: "dict[str, Any]") -> None:
        self._only(data, ("id", "upto"))
        upto = data.get("upto")
        if upto is None or isinstance(upto, bool) or not isinstance(upto, int):
            raise CommandError("upto: must be an integer event id")
        self.safety.contact(now_ms)
        before = len(self.pending)
        self.pending = [e for e in self.pending if e["id"] > upto]
        if len(self.pending) != before:
            self._save_outbox()
        ack["upto"] = upto
        ack["pending"] = len(self.pending)

    # -- events, telemetry, persistence --------------------------------------------------

    def _queue(self, event: "dict[str, Any]", now_ms: int) -> None:
        event["id"] = self.next_event_id
        event["boot"] = self.boot
        self.next_event_id += 1
        self.pending.append(event)
        if len(self.pending) > MAX_PENDING_EVENTS:
            lost = len(self.pending) - MAX_PENDING_EVENTS
            self.pending = self.pending[lost:]
            self.dropped_events += lost
            self.log.warn("event outbox full: dropped the {} oldest".format(lost))
        self._save_outbox()
        self._events_sent_ms = None  # send at the next chance

    def _save_outbox(self) -> None:
        self.store.save("events", {"next_id": self.next_event_id, "pending": self.pending,
                                   "dropped": self.dropped_events})

    def _publish(self, now_ms: int, just_connected: bool) -> None:
        link = self.link
        if not link.connected:
            return
        acks, self.acks = self.acks, []
        for ack in acks:
            if not link.publish(now_ms, "ack", ack):
                return
        if self.pending and (just_connected or self._events_sent_ms is None
                             or now_ms - self._events_sent_ms >= EVENT_RESEND_MS):
            for event in self.pending:
                if not link.publish(now_ms, "event", event):
                    return
            self._events_sent_ms = now_ms
        if just_connected or now_ms >= self._telemetry_due_ms:
            self._telemetry_due_ms = now_ms + self._ms(self.settings["telemetry_period_s"])
            link.publish(now_ms, "telemetry", self.telemetry(now_ms))

    def telemetry(self, now_ms: int) -> "dict[str, Any]":
        self.telemetry_seq += 1
        last = self.safety.last_contact_ms
        return {
            "v": 1,
            "seq": self.telemetry_seq,
            "boot": self.boot,
            "uptime_ms": now_ms,
            "sensors": self.sensors.status(now_ms),
            "heat": self.heat.status(),
            "relays": {"contactor": self.safety.contactor, "pump": self.safety.pump},
            "safe": self.safety.reasons(),
            "controller_age_ms": None if last is None else now_ms - last,
            "pending_events": len(self.pending),
            "dropped_events": self.dropped_events,
            "tank_max_c": self.settings["tank_max_c"],
        }

    def _persist_heat(self, now_ms: int, force: bool) -> None:
        counters = self.heat.counters()
        if counters == self._heat_saved:
            return
        if not force and now_ms - self._heat_saved_ms < self._ms(
                self.settings["persist_period_s"]):
            return
        self.store.save("heat", counters)
        self._heat_saved = counters
        self._heat_saved_ms = now_ms

    def shutdown(self, now_ms: int) -> None:
        """A planned stop (soft reset, deploy): keep the counters, leave relays safe."""
        self._persist_heat(now_ms, True)
        self.relays.set(False, bool(self.settings["safe_pump_on"]))
