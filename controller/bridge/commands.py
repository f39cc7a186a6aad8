"""Commands over MQTT (`hearth/<site>/cmd/<name>`): their payloads, validation, hand-over.

The bridge validates a command against the current site config and then hands it to the
service through a callback (`CommandSink`). `CommandQueue` is the ready-made sink: the
bridge thread puts, the control loop drains once per tick, so the loop never waits on
MQTT and a command is applied between two ticks, never in the middle of one.

Payloads (JSON objects; an optional `"id"` is echoed in the answer):

| topic               | payload                                            |
| ---                 | ---                                                |
| cmd/mode            | {"mode": "grid" or "heating"}                      |
| cmd/miner_power     | {"miner": "s9", "power_w": 800} (null: automatic)  |
| cmd/miner_enable    | {"miner": "s9", "enabled": false}                  |
| cmd/pause_all       | {"paused": true}                                   |
| cmd/tank_target     | {"target_c": 58.5}                                 |
| cmd/dr_cap          | {"cap_w": 1500, "duration_s": 3600} (null: no cap) |
| cmd/dr_absorb       | {"absorb_w": 800, "duration_s": 900} (null: none)  |
| cmd/prices          | {"prices": [{"time": "2026-03-01T00:00:00+01:00",  |
|                     |   "import_price": 0.21, "export_price": 0.04}, ..]}|
| cmd/bitcoin_terms   | {"difficulty": 1.49e14, "reward_sats": 315000000,  |
|                     |  "btc_price": 81250.5, "currency": "EUR"}          |

Both DR commands also take an optional `event_id` and `start` (ISO 8601 with offset);
see docs/dr.md.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.config.load import problems_from_validation
from controller.config.models import Actuation, Mode, SiteConfig
from controller.errors import InputError, Problem
from controller.runtime.market import MarketTerms, pushed_terms
from controller.runtime.mempool import MAX_BTC_PRICE, MAX_DIFFICULTY, MAX_REWARD_SATS
from controller.runtime.prices import PriceSeries, build_series


class SetMode(NamedTuple):
    mode: Mode


class SetMinerPower(NamedTuple):
    miner: str
    power_w: float | None  # None: back to automatic; 0: keep off


class SetMinerEnabled(NamedTuple):
    miner: str
    enabled: bool


class PauseAll(NamedTuple):
    paused: bool


class SetTankTarget(NamedTuple):
    target_c: float | None  # None: a person's target is withdrawn


class SetDrCap(NamedTuple):
    cap_w: float | None  # None: no cap
    duration_s: float | None  # None: until changed
    event_id: str | None = None  # None: the one MQTT cap (a new one replaces it)
    start_s: float | None = None  # UTC epoch seconds; None: now


class SetDrAbsorb(NamedTuple):
    """A DR request to absorb: the miners take at least `absorb_w` (under hard caps)."""

    absorb_w: float | None  # None: end the request
    duration_s: float | None  # None: until changed
    event_id: str | None = None
    start_s: float | None = None  # UTC epoch seconds; None: now


class SetPrices(NamedTuple):
    """A dynamic price series (controller/runtime/prices.py): replaces the current one."""

    series: PriceSeries


class SetBitcoinTerms(NamedTuple):
    """Network terms pushed by a site without internet (controller/runtime/market.py)."""

    terms: MarketTerms


Command = (SetMode | SetMinerPower | SetMinerEnabled | PauseAll | SetTankTarget | SetDrCap
           | SetDrAbsorb | SetPrices | SetBitcoinTerms)


class CommandRefused(Exception):
    """Raised by a sink that cannot apply a valid command now (answered as an error)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class CommandSink(Protocol):
    def __call__(self, command: Command) -> None: ...


class CommandQueue:
    """Thread-safe hand-over from the bridge to the control loop."""

    def __init__(self, maxsize: int = 256) -> None:
        self._q: queue.Queue[Command] = queue.Queue(maxsize)

    def __call__(self, command: Command) -> None:
        try:
            self._q.put_nowait(command)
        except queue.Full:
            raise CommandRefused([Problem("", "the controller is busy (command queue full); "
                                          "try again")]) from None

    def drain(self) -> list[Command]:
        """Every command received since the last drain, oldest first. Never blocks."""
        out: list[Command] = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out


# -- payload schemas (strict: "55" is not a number, true is not 1) ----------------------------

Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    id: Annotated[str, Field(max_length=64)] | None = None


class _Mode(_Payload):
    mode: str


class _MinerPower(_Payload):
    miner: str
    power_w: Finite | None


class _MinerEnable(_Payload):
    miner: str
    enabled: bool


class _PauseAll(_Payload):
    paused: bool


class _TankTarget(_Payload):
    target_c: Finite | None  # null: back to the plan's or the configured target


_DrDuration = Annotated[float, Field(gt=0, le=7 * 86400, allow_inf_nan=False)]
_EventId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _DrCap(_Payload):
    cap_w: Finite | None
    duration_s: _DrDuration | None = None
    event_id: _EventId | None = None
    start: str | None = None


class _DrAbsorb(_Payload):
    absorb_w: Finite | None
    duration_s: _DrDuration | None = None
    event_id: _EventId | None = None
    start: str | None = None


class _PricePoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # values checked by build_series
    time: Any
    import_price: Any
    export_price: Any


class _Prices(_Payload):
    prices: Annotated[list[_PricePoint], Field(min_length=1, max_length=2000)]


def _prices(p: _Prices, cfg: SiteConfig) -> Command:
    rows = [(f"prices[{i}]", q.time, q.import_price, q.export_price)
            for i, q in enumerate(p.prices)]
    return SetPrices(build_series(rows, "cmd/prices", text_numbers=False))


class _BitcoinTerms(_Payload):
    difficulty: Annotated[float, Field(gt=0, le=float(MAX_DIFFICULTY), allow_inf_nan=False)]
    reward_sats: Annotated[int, Field(gt=0, le=MAX_REWARD_SATS)]  # subsidy + fees per block
    btc_price: Annotated[float, Field(gt=0, le=float(MAX_BTC_PRICE), allow_inf_nan=False)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    as_of: str | None = None  # ISO 8601 with offset; default: when received


MAX_CLOCK_SKEW_S = 300.0


def _bitcoin_terms(p: _BitcoinTerms, cfg: SiteConfig) -> Command:
    """Every field checked before anything is applied; the terms replace the live ones whole."""
    problems: list[Problem] = []
    if p.currency != cfg.site.currency:
        problems.append(Problem("currency", f"must be the site currency {cfg.site.currency} "
                                            f"(the price is not converted), got {p.currency}"))
    now_s = time.time()
    as_of_s = now_s
    if p.as_of is not None:
        try:
            t = datetime.fromisoformat(p.as_of.replace("Z", "+00:00"))
        except ValueError:
            t = None
            problems.append(Problem("as_of", f"{p.as_of[:64]!r} is not an ISO 8601 time"))
        if t is not None and t.tzinfo is None:
            problems.append(Problem("as_of", "needs a UTC offset or 'Z'"))
        elif t is not None:
            as_of_s = t.timestamp()
            limit = cfg.bitcoin.feed.stale_after_s
            if as_of_s > now_s + MAX_CLOCK_SKEW_S:
                problems.append(Problem("as_of", "is in the future"))
            elif now_s - as_of_s > limit:
                problems.append(Problem("as_of", f"older than bitcoin.feed.stale_after_s "
                                                 f"({limit} s): these terms would be stale "
                                                 "at once"))
    if problems:
        raise InputError("cmd/bitcoin_terms", problems)
    return SetBitcoinTerms(pushed_terms(Decimal(repr(float(p.difficulty))), p.reward_sats,
                                        Decimal(repr(float(p.btc_price))), p.currency,
                                        min(as_of_s, now_s)))


def _miner(cfg: SiteConfig, name: str, problems: list[Problem]) -> Any:
    for m in cfg.miners:
        if m.name == name:
            return m
    problems.append(Problem("miner", f"no miner named {name!r}; the site has "
                                     f"{[m.name for m in cfg.miners]}"))
    return None


def _mode(p: _Mode, cfg: SiteConfig) -> Command:
    why = cfg.mode_refusal(p.mode)
    if why is not None:
        raise _refuse("mode", why)
    return SetMode(Mode(p.mode))


def _miner_power(p: _MinerPower, cfg: SiteConfig) -> Command:
    problems: list[Problem] = []
    m = _miner(cfg, p.miner, problems)
    if m is None:
        raise InputError("cmd/miner_power", problems)
    w = p.power_w
    if w is None or w == 0:
        return SetMinerPower(m.name, w)
    if w < 0:
        raise _refuse("power_w", "must be 0 (off), null (automatic) or positive")
    levels = m.levels_w()
    if m.actuation is Actuation.RELAY and w != m.max_power_w:
        raise _refuse("power_w", f"{m.name} is switched by a relay: 0 or {m.max_power_w:g}")
    if levels is not None and not any(math.isclose(w, lv) for lv in levels):
        raise _refuse("power_w", f"{m.name} runs only at {[f'{x:g}' for x in levels]} W "
                                 "(or 0)")
    if not m.min_power_w <= w <= m.max_power_w:
        raise _refuse("power_w", f"must be 0 or within {m.min_power_w:g}..{m.max_power_w:g} W "
                                 f"for {m.name}")
    return SetMinerPower(m.name, float(w))


def _miner_enable(p: _MinerEnable, cfg: SiteConfig) -> Command:
    problems: list[Problem] = []
    m = _miner(cfg, p.miner, problems)
    if m is None:
        raise InputError("cmd/miner_enable", problems)
    return SetMinerEnabled(m.name, p.enabled)


def _tank_target(p: _TankTarget, cfg: SiteConfig) -> Command:
    if cfg.tank is None:
        raise _refuse("target_c", "this site has no tank")
    if p.target_c is None:
        return SetTankTarget(None)
    t = cfg.tank
    if not t.min_c < p.target_c < t.max_c:
        raise _refuse("target_c", f"must be above min_c ({t.min_c:g}) and below max_c "
                                  f"({t.max_c:g}) °C")
    return SetTankTarget(float(p.target_c))


def _dr_start(start: str | None, duration_s: float | None) -> float | None:
    """`start` (ISO 8601 with offset) as UTC epoch seconds; refused if the event is over
    already or starts more than 7 days ahead."""
    if start is None:
        return None
    try:
        t = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse("start", f"{start!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise _refuse("start", "needs a UTC offset or 'Z' (e.g. 2025-06-01T14:00:00+02:00)")
    start_s = t.timestamp()
    now_s = time.time()
    if duration_s is not None and start_s + duration_s <= now_s:
        raise _refuse("start", "the event would already be over (start + duration_s is in "
                               "the past)")
    if start_s > now_s + 7 * 86400:
        raise _refuse("start", "more than 7 days ahead")
    return start_s


def _dr_cap(p: _DrCap, cfg: SiteConfig) -> Command:
    if p.cap_w is not None and p.cap_w < 0:
        raise _refuse("cap_w", "must be at least 0 W, or null for no cap")
    if p.cap_w is not None and p.cap_w > cfg.site_power_bound_w:
        raise _refuse("cap_w", f"must be at most what the site can deliver "
                               f"({cfg.site_power_bound_w:g} W: import limit, inverter, "
                               "battery), or null for no cap")
    if p.cap_w is None and p.duration_s is not None:
        raise _refuse("duration_s", "only applies to a cap (cap_w is null)")
    if p.cap_w is None and p.start is not None:
        raise _refuse("start", "only applies to a cap (cap_w is null)")
    return SetDrCap(None if p.cap_w is None else float(p.cap_w), p.duration_s, p.event_id,
                    _dr_start(p.start, p.duration_s))


def _dr_absorb(p: _DrAbsorb, cfg: SiteConfig) -> Command:
    w = p.absorb_w
    if w is not None and not 0 < w <= cfg.miner_capacity_w:
        raise _refuse("absorb_w", f"must be above 0 and at most the miners' capacity "
                                  f"({cfg.miner_capacity_w:g} W), or null to end the request")
    if w is None and p.duration_s is not None:
        raise _refuse("duration_s", "only applies to a request (absorb_w is null)")
    if w is None and p.start is not None:
        raise _refuse("start", "only applies to a request (absorb_w is null)")
    return SetDrAbsorb(None if w is None else float(w), p.duration_s, p.event_id,
                       _dr_start(p.start, p.duration_s))


def _refuse(field: str, reason: str) -> InputError:
    return InputError("cmd", [Problem(field, reason)])


_Handler = Callable[[Any, SiteConfig], Command]
COMMANDS: dict[str, tuple[type[_Payload], _Handler]] = {
    "mode": (_Mode, _mode),
    "miner_power": (_MinerPower, _miner_power),
    "miner_enable": (_MinerEnable, _miner_enable),
    "pause_all": (_PauseAll, lambda p, cfg: PauseAll(p.paused)),
    "tank_target": (_TankTarget, _tank_target),
    "dr_cap": (_DrCap, _dr_cap),
    "dr_absorb": (_DrAbsorb, _dr_absorb),
    "prices": (_Prices, _prices),
    "bitcoin_terms": (_BitcoinTerms, _bitcoin_terms),
}
CommandName = Literal["mode", "miner_power", "miner_enable", "pause_all", "tank_target", "dr_cap",
                      "dr_absorb", "prices", "bitcoin_terms"]


def parse_command(name: str, doc: Any, cfg: SiteConfig) -> Command:
    """Validate a decoded payload for command `name`; InputError names every bad field."""
    source = f"cmd/{name}"
    if name not in COMMANDS:
        raise InputError(source, [Problem("command", f"unknown command {name!r}; known: "
                                                     f"{sorted(COMMANDS)}")])
    schema, handler = COMMANDS[name]
    if not isinstance(doc, dict):
        raise InputError(source, [Problem("payload", "must be a JSON object, e.g. "
                                                     f"{_EXAMPLES[name]}")])
    try:
        payload = schema.model_validate(doc)
    except ValidationError as err:
        raise InputError(source, problems_from_validation(err)) from None
    try:
        return handler(payload, cfg)
    except InputError as err:
        raise InputError(source, err.problems) from None


_EXAMPLES = {
    "mode": '{"mode": "grid"}',
    "miner_power": '{"miner": "s9", "power_w": 800}',
    "miner_enable": '{"miner": "s9", "enabled": true}',
    "pause_all": '{"paused": true}',
    "tank_target": '{"target_c": 55}',
    "dr_cap": '{"cap_w": 1500}',
    "dr_absorb": '{"absorb_w": 800, "duration_s": 900}',
    "prices": '{"prices": [{"time": "2026-03-01T00:00:00Z", "import_price": 0.2, '
              '"export_price": 0.05}]}',
    "bitcoin_terms": '{"difficulty": 1.49e14, "reward_sats": 315000000, "btc_price": 81250, '
                     '"currency": "EUR"}',
}


def describe(cmd: Command) -> dict[str, Any]:
    """The normalised command, echoed in the ok answer."""
    out = cmd._asdict()
    for k, v in out.items():
        if isinstance(v, Mode):
            out[k] = v.value
        elif isinstance(v, PriceSeries):
            out[k] = {"periods": len(v.starts_s), "start_s": v.starts_s[0], "end_s": v.end_s}
        elif isinstance(v, MarketTerms):
            out[k] = v.as_json()
    return out
