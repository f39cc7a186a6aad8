"""One tick as the wall page shows it: flows, tank, miners, alarms in plain words.

Pure functions of a `TickRecord`, the site config and the DR schedule's events (no clock,
no I/O), so the words a resident reads are tested like the control core. Staleness is
judged with the tick's own monotonic time, exactly as the controller judged it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from controller.config.models import MinerConfig, Mode, SiteConfig
from controller.control.types import (
    Commands,
    Measurements,
    MinerCommand,
    MinerReading,
    Reading,
    Trip,
)
from controller.miners.factory import can_pause
from controller.runtime.dr import DrEvent
from controller.runtime.market import TermsStatus
from controller.runtime.ports import TickRecord
from hmi.schemas import Alarm, BitcoinOut, Flows, GridRequest, Miner, StateOut, Tank

# code -> (severity, title, what the controller does). Words for residents: no jargon.
_TRIPS: dict[str, tuple[str, str, str]] = {
    "stale_meter": ("alarm", "No reading from the grid meter",
                    "The miners are turned down to zero until the meter answers again."),
    "import_limit": ("alarm", "The house draws a lot from the grid",
                     "The miners are turned down so the main fuse is not overloaded."),
    "dr_cap": ("info", "Grid power limit in force",
               "The miners are kept below a limit set by the grid operator or a command."),
    "hold": ("info", "Miners paused", ""),
    "stale_battery": ("alarm", "No reading from the battery",
                      "The miners are turned down to zero: the battery reserve cannot be "
                      "protected without it."),
    "battery_reserve": ("warning", "Battery at its reserve",
                        "The miners are turned down so they do not empty the battery."),
    "stale_tank": ("alarm", "No tank temperature",
                   "The miners that heat the tank are stopped until the sensor answers."),
    "tank_max": ("info", "Tank is full of heat",
                 "The miners that heat the tank are off until it cools down a little."),
    "forced_off": ("warning", "A miner was stopped early",
                   "A safety limit stopped it before its minimum run time."),
    "miner_ignores_stop": ("alarm", "A miner does not stop when told",
                           "Its power is counted like the house's: the other miners make "
                           "room for it. Check the miner on site."),
}

_STATUS: dict[str, str] = {
    "grid": "Miners use the solar power the house does not need.",
    "tank": "Miners run as much as the tank needs to reach its target.",
    "import_limit": "Miners are held back: the house is close to its grid limit.",
    "dr_cap": "Miners are held at the grid operator's limit.",
    "dr_absorb": "Miners take extra power because the grid operator asked for it.",
    "stale_meter": "Miners are stopping: no reading from the grid meter.",
    "stale_battery": "Miners are stopping: no reading from the battery.",
    "battery_reserve": "Miners are held back to protect the battery reserve.",
    "stale_tank": "Tank miners are off: no tank temperature.",
    "tank_max": "Tank is full of heat: its miners are off.",
    "hold": "Miners are paused.",
}

MODE_WORDS: dict[str, str] = {
    Mode.GRID.value: "Solar surplus",
    Mode.HEATING.value: "Heat first",
    Mode.ISLAND.value: "Island",
}


def modes_available(cfg: SiteConfig) -> list[str]:
    """Modes a person may choose here (see SiteConfig.selectable_modes)."""
    return [m.value for m in cfg.selectable_modes()]


def alarm_of(trip: Trip, hold_reason: str | None = None) -> Alarm:
    severity, title, detail = _TRIPS.get(
        trip.code, ("warning", trip.code.replace("_", " ").capitalize(), ""))
    if trip.code == "hold":
        detail = _hold_words(hold_reason)
    if not detail:
        detail = trip.reason
    return Alarm(code=trip.code, severity=severity,
                 title=title, detail=detail, miner=trip.miner)


def _hold_words(reason: str | None) -> str:
    if reason is None:
        return "The miners are held off."
    if reason.startswith("random start-up delay"):
        return "The controller just started and waits a moment before the miners start " \
               f"({reason.removeprefix('random start-up delay ').strip('()')})."
    if reason == "waiting for fresh measurements":
        return "The controller just started and waits for the first meter reading."
    return f"Held off: {reason}."


def _fresh(r: Reading | None, now: float, limit_s: float) -> bool:
    return r is not None and now - r.at_s <= limit_s


def _value(r: Reading | None) -> float | None:
    return None if r is None else r.value


def flows_of(m: Measurements, now: float, cfg: SiteConfig) -> Flows:
    limit = cfg.control.stale_timeout_s
    miners_w = sum(r.power_w for r in m.miners.values())
    pv, grid, bat = _value(m.pv_power_w), _value(m.grid_power_w), _value(m.battery_power_w)
    load = None
    if grid is not None and pv is not None and (cfg.battery is None or bat is not None):
        # The energy balance at the meter; readings a moment apart can make it dip below 0.
        load = max(pv + grid - (bat or 0.0) - miners_w, 0.0)
    stale = [name for name, r in (("pv_w", m.pv_power_w), ("grid_w", m.grid_power_w),
                                  ("battery_w", m.battery_power_w), ("soc_pct", m.soc_pct),
                                  ("tank_c", m.tank_temp_c))
             if r is not None and not _fresh(r, now, limit)]
    heat = None
    if cfg.tank is not None:
        tank_names = {mc.name for mc in cfg.miners if mc.heats_tank}
        heat = sum(r.power_w for n, r in m.miners.items() if n in tank_names) \
            * cfg.tank.miner_heat_fraction
    return Flows(pv_w=pv, grid_w=grid, battery_w=bat, soc_pct=_value(m.soc_pct), load_w=load,
                 miners_w=miners_w, heat_to_tank_w=heat, stale=stale)


# -- why a miner does what it does ------------------------------------------------------------

# The controller's per-miner reason codes (MinerCommand.reason) -> what a resident reads.
# "{left}" becomes the time left (MinerCommand.reason_left_s), e.g. "3 min"; a sentence
# without a time left drops the part in brackets: "[... in {left}]".
_REASONS: dict[str, str] = {
    "min_off": "Rests for its minimum off time after a stop[: may start again in {left}].",
    "min_on": "Keeps running for its minimum run time[: {left} to go].",
    "on_delay": "Waits to see the spare power last[: starts in {left} if it does].",
    "off_delay": "Spare power dropped: it stops[ in {left}] unless the power comes back.",
    "booting": "Starting up[: hashing in about {left}].",
    "start_delay": "The controller just started and waits a moment before the miners start"
                   "[ ({left})].",
    "waiting_measurements": "The controller just started and waits for the first meter "
                            "reading.",
    "stale_meter": "Off: no reading from the grid meter.",
    "stale_battery": "Off: no reading from the battery.",
    "stale_tank": "Off: no tank temperature.",
    "import_limit": "Held back: the house is close to its grid limit.",
    "battery_reserve": "Held back: the battery is at its reserve.",
    "dr_cap": "Held back by the grid operator's limit.",
    "tank_max": "Off: the tank is full of heat.",
    "tank_target": "Off: the tank has reached its target.",
    "price": "Off: power costs more now than the miner earns with it.",
    "price_spike": "Off: power is very expensive right now.",
    "schedule": "Off: outside the hours it may run.",
    "quiet_hours": "Held low: quiet hours.",
    "not_enough_surplus": "Off: not enough spare solar power for it.",
    "surplus": "Runs on spare solar power.",
    "tank": "Off: the tank needs no more heat right now.",
    "heating": "Held back: the tank takes what it needs.",
    "heating_price_cap": "Off: grid power costs more now than the heat is worth.",
    "plan": "Follows the day-ahead plan.",
    "export_price": "Off: selling the power to the grid pays more now.",
    "export_pays": "Off: {pays}.",
    "dr_absorb": "Runs at the grid operator's request.",
    "battery_discharge": "Held back: it would run on the battery.",
    "island_battery": "Held back: the battery carries the house.",
    "island": "Off: not enough spare power from the solar and the battery.",
    "no_battery": "Off: no reading from the battery.",
    "battery_while_buying": "Held back: power bought from the grid must not drain the "
                            "battery.",
    "paused_by_user": "Paused (from this page or by the home system).",
    "hold": "Held off.",
    "cannot_pause": "Cannot pause: its firmware has no pause, so it stays at its lowest "
                    "power{power}.",
    "manual": "Held at a fixed power set by the installer.",
    "manual_off": "Kept off by the installer.",
    "forced_off": "Stopped early by a safety limit.",
    "no_data": "No answer from the miner.",
    "unavailable": "No answer from the miner.",
}

_OFF_WORDS = ("Off: ", "Held back: ", "Held low: ")


def duration_words(s: float) -> str:
    """40 s, 3 min, 1 h 5 min: how long, as a person says it (rounded up: a resident who
    waits the time said must not find it still waiting)."""
    s = max(0.0, s)
    if s < 60:
        return f"{max(1, math.ceil(s))} s"
    m = math.ceil(s / 60)
    if m < 60:
        return f"{m} min"
    return f"{m // 60} h" + (f" {m % 60} min" if m % 60 else "")


def per_kwh_words(x: float, currency: str) -> str:
    """4.1 ct/kWh for a euro or dollar site, else 0.041 CHF/kWh: as a bill says it."""
    if currency in ("EUR", "USD"):
        return f"{x * 100:.1f} ct/kWh"
    return f"{x:.3f} {currency}/kWh"


def reason_words(code: str, left_s: float | None = None, power_w: float | None = None,
                 worth_per_kwh: float | None = None, price_per_kwh: float | None = None,
                 currency: str = "EUR") -> str:
    """One sentence for a reason code, with the time left when the controller gave one
    (and, for `export_pays`, the two numbers it compared)."""
    text = _REASONS.get(code)
    if text is None:
        text = code.replace("_", " ").capitalize() + "[ ({left} left)]."
    if left_s is not None and left_s > 0:
        text = text.replace("[", "").replace("]", "").replace("{left}",
                                                                duration_words(left_s))
    else:
        text = re.sub(r"\[[^\]]*\]", "", text)
    pays = "selling the power to the grid pays more now"
    if worth_per_kwh is not None and price_per_kwh is not None:
        pays = (f"mining pays {per_kwh_words(worth_per_kwh, currency)}, export pays "
                f"{per_kwh_words(price_per_kwh, currency).split(' ')[0]}: exporting")
    text = text.replace("{pays}", pays)
    return text.replace("{power}", "" if power_w is None else f", {power_words(power_w)}")


# Firmware without a pause (controller/miners/axeos.py: `can_pause = False`).


def _hold_code(hold_reason: str | None) -> str:
    if hold_reason is None:
        return "hold"
    if hold_reason == "waiting for fresh measurements":
        return "waiting_measurements"
    return "start_delay" if hold_reason.startswith("random start-up delay") \
        else "paused_by_user"


def _cannot_pause(mc: MinerConfig, r: MinerReading | None) -> bool:
    """The driver said so (`MinerReading.can_pause`), or its driver table does (the drivers'
    one fact: AxeOS without `use_pause`)."""
    return (r is not None and not getattr(r, "can_pause", True)) or not can_pause(mc)


def _fallback_reason(mc: MinerConfig, r: MinerReading | None, c: MinerCommand | None,
                     state: str, cmds: Commands, hold_reason: str | None) -> str | None:
    """Only if the controller gave no reason (an older control core): what the tick itself
    says, never a guess about timers."""
    name = mc.name
    if state == "no_data":
        return "no_data"
    if c is not None and c.run:
        return None
    if state in ("mining", "starting") and _cannot_pause(mc, r):
        return "cannot_pause"
    if hold_reason is not None:
        return _hold_code(hold_reason)
    for t in cmds.trips:
        if t.miner in (None, name) and t.code in _REASONS and t.code != "hold":
            return t.code
    return None


def _miner_state(r: MinerReading | None, run: bool, now: float, limit_s: float) -> str:
    if r is None or now - r.at_s > limit_s:
        return "no_data"
    if r.running:
        return "mining" if r.hashrate_ths > 0 else "starting"
    return "paused" if run else "off"


def miners_of(tick: TickRecord, cfg: SiteConfig) -> list[Miner]:
    cmds = tick.commands.by_name()
    manual: Mapping[str, float] = tick.overrides.manual_w
    now, limit = tick.monotonic_s, cfg.control.stale_timeout_s
    out = []
    for mc in cfg.miners:
        r = tick.measurements.miners.get(mc.name)
        c = cmds.get(mc.name)
        state = _miner_state(r, c.run if c else False, now, limit)
        reason: str | None = getattr(c, "reason", None) or None
        left = getattr(c, "reason_left_s", None)
        if reason is None:
            reason = _fallback_reason(mc, r, c, state, tick.commands,
                                      tick.overrides.hold_reason)
            left = None
        if reason == "hold":
            # The core knows a hold, the service knows whose: a pause or its start-up.
            reason = _hold_code(tick.overrides.hold_reason)
        if c is not None and not c.run and state in ("mining", "starting") \
                and _cannot_pause(mc, r):
            # Told to stop, still hashing: its firmware has no pause (the drivers' fact).
            reason, left = "cannot_pause", None
        if mc.name in manual and reason not in ("no_data", "unavailable", "forced_off"):
            reason, left = ("manual_off" if manual[mc.name] <= 0 else "manual"), None
        power = None if r is None else r.power_w
        out.append(Miner(
            name=mc.name, kind=mc.kind, state=state,
            power_w=power,
            target_w=c.power_target_w if c else 0.0, max_power_w=mc.max_power_w,
            hashrate_ths=None if r is None else r.hashrate_ths,
            temp_c=None if r is None else r.temp_c,
            manual_w=manual.get(mc.name), heats_tank=mc.heats_tank,
            reason=reason, reason_left_s=None if left is None else round(float(left), 1),
            why=None if reason is None else reason_words(
                reason, left, power, getattr(c, "reason_worth_per_kwh", None),
                getattr(c, "reason_price_per_kwh", None), cfg.site.currency)))
    return out


_RANK = {"alarm": 0, "warning": 1, "info": 2}


def _waiting(miners: list[Miner]) -> list[Miner]:
    """Miners that could take power but do not, with the controller's reason."""
    return [m for m in miners if m.reason is not None and m.state != "mining"
            and m.reason not in ("surplus", "tank", "min_on", "manual", "cannot_pause")]


def _who_waits(miners: list[Miner]) -> str:
    """'s9: rests for its minimum off time after a stop: may start again in 3 min.'"""
    parts = []
    for m in miners[:2]:
        why = m.why or ""
        parts.append(f"{m.name}: {why[:1].lower()}{why[1:]}".removesuffix("."))
    more = f" (and {len(miners) - 2} more)" if len(miners) > 2 else ""
    return "; ".join(parts) + more + "."


def status_of(tick: TickRecord, cfg: SiteConfig, paused: bool,
              miners: list[Miner] | None = None) -> str:
    """The most serious reason first: a safety trip says more than the limiter (which names
    the first of several equal bounds, e.g. 'grid' when a stale meter also caps at 0).

    Never contradicts the numbers on the same page: "not enough spare solar" or "the
    battery charges first" only while no more goes to the grid than an idle miner could
    start on; otherwise the power going out and the miners' own reasons are said."""
    cmds = tick.commands
    miners = miners if miners is not None else miners_of(tick, cfg)
    if paused:
        stuck = [m for m in miners if m.reason == "cannot_pause"]
        if stuck:
            names = " and ".join(m.name for m in stuck[:3])
            w = sum(m.power_w or 0 for m in stuck)
            return (f"Miners are paused. Tap Resume to let them run again. {names} cannot "
                    f"pause (no pause in their firmware): they stay at their lowest power, "
                    f"{power_words(w)} together.")
        return "Miners are paused. Tap Resume to let them run again."
    trips = sorted((t for t in cmds.trips if t.code in _STATUS and t.code != "hold"),
                   key=lambda t: _RANK[_TRIPS[t.code][0]] if t.code in _TRIPS else 3)
    if trips and _TRIPS.get(trips[0].code, ("info",))[0] != "info":
        return _STATUS[trips[0].code]
    g = tick.measurements.grid_power_w
    export_w = max(0.0, -g.value) if g is not None else 0.0
    idle = [mc for mc in cfg.miners
            if next((m for m in miners if m.name == mc.name and m.state != "mining"), None)]
    could_start_w = min((mc.min_power_w for mc in idle), default=math.inf)
    c = cfg.control
    exporting = export_w >= max(could_start_w, 100.0) + c.on_hysteresis_w + c.export_margin_w
    waiting = _waiting(miners)
    if exporting and waiting and cmds.limiter in ("grid", "tank"):
        return f"{power_words(export_w)} goes to the grid. {_who_waits(waiting)}"
    if cmds.limiter == "grid" and cmds.total_target_w <= 0:
        if exporting:
            return (f"{power_words(export_w)} goes to the grid: the miners are about to "
                    "take it.")
        policy = tick.debug.battery_policy if tick.debug is not None else ""
        if policy == "battery_first" and cfg.battery is not None:
            return ("The battery charges first: below "
                    f"{cfg.battery.priority_soc_pct:.0f} % the miners only get the solar "
                    "power it cannot take.")
        return "Not enough spare solar power for the miners right now."
    return _STATUS.get(cmds.limiter, f"Miners limited by {cmds.limiter.replace('_', ' ')}.")


# -- demand response ------------------------------------------------------------------------

MAX_SCHEDULED = 5  # the wall page shows what is next, not a week of events
_MQTT_ANONYMOUS = {"mqtt-cap", "mqtt-absorb"}  # controller/runtime/mqtt_wiring.py
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


def power_words(power_w: float) -> str:
    """800 W, 1.5 kW, 1.44 kW: as a resident says it (no trailing zeros)."""
    if abs(power_w) < 1000:
        return f"{power_w:.0f} W"
    return f"{power_w / 1000:.2f}".rstrip("0").rstrip(".") + " kW"


def _clock_words(t_s: float, tz: ZoneInfo, day: date) -> str:
    """Local time of day, with the day when it is not `day` (fixed English words: the
    rest of the page is English, and the Pi's locale is not to be trusted)."""
    local = datetime.fromtimestamp(t_s, tz)
    hhmm = f"{local:%H:%M}"
    days = (local.date() - day).days
    if days == 0:
        return hhmm
    if days == 1:
        return f"tomorrow {hhmm}"
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {hhmm}"


def _asks(ev: DrEvent) -> str:
    if ev.kind == "absorb":
        return f"to take at least {power_words(ev.power_w)}"
    return "to switch off" if ev.power_w < 1 else f"to stay under {power_words(ev.power_w)}"


def _reference(ev: DrEvent) -> str:
    if ev.source == "openadr":
        return f"OpenADR event {ev.event_id}"
    if ev.source == "mqtt":
        return "sent over MQTT" if ev.event_id in _MQTT_ANONYMOUS \
            else f"MQTT event {ev.event_id}"
    return f"{ev.source} event {ev.event_id}"


def grid_request_of(ev: DrEvent, now_s: float, tz: ZoneInfo) -> GridRequest:
    """One event in plain words: who asks the miners what, until when, and which event it is
    (the id an aggregator's statement names)."""
    today = datetime.fromtimestamp(now_s, tz).date()
    who = "The grid operator" if ev.source == "openadr" else "A grid-service request"
    active = ev.active_at(now_s)
    if active:
        until = "until further notice" if ev.end_s is None \
            else f"until {_clock_words(ev.end_s, tz, today)}"
        detail = f"{who} asked the miners {_asks(ev)} {until} ({_reference(ev)})."
        title = "Grid request: use less" if ev.kind == "reduce" else "Grid request: use more"
    else:
        start_day = datetime.fromtimestamp(ev.start_s, tz).date()
        until = "until further notice" if ev.end_s is None \
            else f"to {_clock_words(ev.end_s, tz, start_day)}"
        detail = (f"{who} has asked the miners {_asks(ev)} from "
                  f"{_clock_words(ev.start_s, tz, today)} {until} ({_reference(ev)}).")
        title = "Planned grid request"
    j = ev.as_json()
    return GridRequest(event_id=ev.event_id, source=ev.source, kind=ev.kind,
                       power_w=j["power_w"], start=j["start"], end=j["end"], active=active,
                       title=title, detail=detail)


def grid_requests_of(events: Iterable[DrEvent], at_utc: datetime, timezone: str
                     ) -> list[GridRequest]:
    """The events in force at `at_utc` (the tick's time, as the DR hook judged them), then
    the next `MAX_SCHEDULED` scheduled ones. Ended events are left out even before the
    schedule drops them."""
    now_s = at_utc.timestamp()
    tz = ZoneInfo(timezone)
    evs = sorted((e for e in events if e.end_s is None or e.end_s > now_s),
                 key=lambda e: (e.start_s, e.source, e.event_id))
    active = [e for e in evs if e.active_at(now_s)]
    later = [e for e in evs if e.start_s > now_s][:MAX_SCHEDULED]
    return [grid_request_of(e, now_s, tz) for e in (*active, *later)]


def is_service_hold(reason: str | None) -> bool:
    """The service's own start-up holds (controller/runtime/service.py), as opposed to a
    pause someone asked for (over MQTT or from this page)."""
    return reason is not None and (reason == "waiting for fresh measurements"
                                   or reason.startswith("random start-up delay"))


def _hours(s: float) -> str:
    h = s / 3600
    return f"{h:g} h" if h >= 1 else f"{s / 60:g} min"


def bitcoin_of(st: TermsStatus | None) -> BitcoinOut | None:
    """Where the bitcoin price comes from, in words a resident can check."""
    if st is None:
        return None
    if st.source == "feed":
        words = "Live market price."
    elif st.source == "mqtt":
        words = "Price sent over the home network."
    elif st.stale:
        words = f"Fixed price: the live one is over {_hours(st.stale_after_s)} old."
    else:
        words = "Fixed price: no live one yet."
    d = st.as_json()
    return BitcoinOut(source=st.source, stale=st.stale, btc_price=d["btc_price"],
                      hashvalue_sats_per_th_day=d["hashvalue_sats_per_th_day"],
                      as_of=d["as_of"], words=words)


def bitcoin_alarm(st: TermsStatus | None) -> Alarm | None:
    """Live terms that went stale: the money is valued at the site file's fixed price."""
    if st is None or not st.stale:
        return None
    return Alarm(code="btc_terms_stale", severity="info", title="Bitcoin price not live",
                 detail=(f"The last live price is over {_hours(st.stale_after_s)} old: "
                         f"the miners and the money use the fixed price from the site "
                         f"settings until a new one arrives."))


def state_of(tick: TickRecord, cfg: SiteConfig, seq: int, boot_id: str,
             dr_events: Iterable[DrEvent] = ()) -> StateOut:
    """The wall page's view of one tick; `dr_events` are the service's DR schedule
    (`service.dr`), empty on a site without demand response."""
    o, c, m = tick.overrides, tick.commands, tick.measurements
    paused = o.hold_reason is not None and not is_service_hold(o.hold_reason)
    tank = None
    if cfg.tank is not None:
        t = cfg.tank
        target = o.effective_tank_target_c(t.target_c)  # a person's, the plan's, or config
        tank = Tank(temp_c=_value(m.tank_temp_c), target_c=target,
                    min_c=t.min_c, max_c=t.max_c, target_overridden=o.tank_target_c is not None)
    alarms = [alarm_of(tr, o.hold_reason) for tr in c.trips]
    stale = bitcoin_alarm(tick.bitcoin)
    if stale is not None:
        alarms.append(stale)
    miners = miners_of(tick, cfg)
    return StateOut(
        available=True, seq=seq, boot_id=boot_id,
        at=tick.at_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), tick_s=cfg.control.tick_s,
        site_name=cfg.site.name or cfg.site.id, timezone=cfg.site.timezone,
        currency=cfg.site.currency,
        mode=c.mode, configured_mode=cfg.control.mode.value,
        modes_available=modes_available(cfg), paused=paused, hold_reason=o.hold_reason,
        limiter=c.limiter, status=status_of(tick, cfg, paused, miners),
        flows=flows_of(m, tick.monotonic_s, cfg), tank=tank, miners=miners,
        alarms=alarms, dr_cap_w=o.dr_cap_w, dr_absorb_w=o.dr_absorb_w,
        grid_requests=grid_requests_of(dr_events, tick.at_utc, cfg.site.timezone),
        total_target_w=c.total_target_w,
        import_price_per_kwh=m.import_price_per_kwh,
        export_price_per_kwh=m.export_price_per_kwh,
        bitcoin=bitcoin_of(tick.bitcoin),
    )


def empty_state(cfg: SiteConfig, boot_id: str) -> StateOut:
    """Before the first tick: the page shows 'waiting for the controller'."""
    return StateOut(
        available=False, seq=0, boot_id=boot_id, at=None, tick_s=cfg.control.tick_s,
        site_name=cfg.site.name or cfg.site.id, timezone=cfg.site.timezone,
        currency=cfg.site.currency,
        mode=cfg.control.mode.value, configured_mode=cfg.control.mode.value,
        modes_available=modes_available(cfg), paused=False, hold_reason=None, limiter=None,
        status="Waiting for the controller…", flows=None, tank=None, miners=[], alarms=[],
        dr_cap_w=None, dr_absorb_w=None, grid_requests=[], total_target_w=None,
        import_price_per_kwh=None,
        export_price_per_kwh=None,
    )
