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
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.config.load import problems_from_validation
from controller.config.models import Actuation, Mode, SiteConfig
from controller.errors import InputError, Problem


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
    target_c: float


class SetDrCap(NamedTuple):
    cap_w: float | None  # None: no cap
    duration_s: float | None  # None: until changed


Command = SetMode | SetMinerPower | SetMinerEnabled | PauseAll | SetTankTarget | SetDrCap


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
    target_c: Finite


class _DrCap(_Payload):
    cap_w: Finite | None
    duration_s: Annotated[float, Field(gt=0, le=7 * 86400, allow_inf_nan=False)] | None = None


def _miner(cfg: SiteConfig, name: str, problems: list[Problem]) -> Any:
    for m in cfg.miners:
        if m.name == name:
            return m
    problems.append(Problem("miner", f"no miner named {name!r}; the site has "
                                     f"{[m.name for m in cfg.miners]}"))
    return None


def _mode(p: _Mode, cfg: SiteConfig) -> Command:
    supported = [Mode.GRID.value] + ([Mode.HEATING.value] if cfg.tank is not None else [])
    if p.mode == Mode.ISLAND.value:
        raise _refuse("mode", "'island' is not supported yet (planned with the supervisor)")
    if p.mode == Mode.HEATING.value and cfg.tank is None:
        raise _refuse("mode", "'heating' needs a tank and this site has none")
    if p.mode not in supported:
        raise _refuse("mode", f"unknown mode {p.mode!r}; one of {supported}")
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
    t = cfg.tank
    if not t.min_c < p.target_c < t.max_c:
        raise _refuse("target_c", f"must be above min_c ({t.min_c:g}) and below max_c "
                                  f"({t.max_c:g}) °C")
    return SetTankTarget(float(p.target_c))


def _dr_cap(p: _DrCap, cfg: SiteConfig) -> Command:
    if p.cap_w is not None and p.cap_w < 0:
        raise _refuse("cap_w", "must be at least 0 W, or null for no cap")
    if p.cap_w is None and p.duration_s is not None:
        raise _refuse("duration_s", "only applies to a cap (cap_w is null)")
    return SetDrCap(None if p.cap_w is None else float(p.cap_w), p.duration_s)


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
}
CommandName = Literal["mode", "miner_power", "miner_enable", "pause_all", "tank_target", "dr_cap"]


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
}


def describe(cmd: Command) -> dict[str, Any]:
    """The normalised command, echoed in the ok answer."""
    out = cmd._asdict()
    for k, v in out.items():
        if isinstance(v, Mode):
            out[k] = v.value
    return out
