"""Why a miner is not running, told per miner with the time left, from the controller's own
reasons (MinerCommand.reason / reason_left_s); and a status line that never contradicts the
numbers beside it (no "not enough spare solar" while kilowatts go to the grid)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from controller.config import load_site
from controller.config.models import SiteConfig
from controller.control.controller import Controller
from controller.control.overrides import Overrides
from controller.control.types import Measurements, MinerReading, Reading
from controller.runtime.ports import TickRecord
from hmi.state import duration_words, reason_words, state_of

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 4, 21, 10, 0, tzinfo=UTC)


def _site() -> SiteConfig:
    return load_site(REPO / "hil" / "sites" / "house-10kwp.toml")


def _meas(now: float, grid_w: float | None, s9_w: float, at_s: float | None = None,
          pv_w: float = 9000.0) -> Measurements:
    t = now if at_s is None else at_s
    return Measurements(
        grid_power_w=None if grid_w is None else Reading(grid_w, t),
        pv_power_w=Reading(pv_w, now), battery_power_w=Reading(0.0, now),
        soc_pct=Reading(100.0, now), tank_temp_c=Reading(45.0, now),
        miners={"s9": MinerReading(s9_w, s9_w / 90, s9_w > 0, now),
                "bitaxe-1": MinerReading(20.0, 1.2, True, now),
                "bitaxe-2": MinerReading(20.0, 1.2, True, now)},
        import_price_per_kwh=0.32, export_price_per_kwh=0.05)


def test_durations_and_sentences_read_as_a_person_says_them() -> None:
    assert [duration_words(s) for s in (0.2, 40, 59.5, 61, 299, 3600, 3900)] == \
        ["1 s", "40 s", "60 s", "2 min", "5 min", "1 h", "1 h 5 min"]
    assert reason_words("min_off", 170) == \
        "Rests for its minimum off time after a stop: may start again in 3 min."
    assert reason_words("min_off", None) == "Rests for its minimum off time after a stop."
    assert reason_words("on_delay", 42) == \
        "Waits to see the spare power last: starts in 42 s if it does."
    assert reason_words("cannot_pause", None, 9.0) == \
        "Cannot pause: its firmware has no pause, so it stays at its lowest power, 9 W."
    assert reason_words("some_new_code", 30) == "Some new code (30 s left)."


def _run(cfg: SiteConfig, ctrl: Controller, m: Measurements, now: float) -> TickRecord:
    o = Overrides()
    return TickRecord(T0, now, m, ctrl.step(m, now, o), o, ctrl.debug, 0.0)


def test_after_a_stale_meter_trip_the_s9_says_it_rests_with_the_time_left() -> None:
    """The issue's case: the S9 runs on the surplus, the grid meter goes silent (trip: all
    miners to zero), the meter comes back with 7.5 kW going to the grid, and the S9 must
    sit out its 5-minute minimum off time. The page says so, with the minutes left, and
    its status line does not claim there is no spare solar power."""
    cfg = _site()
    ctrl = Controller(cfg)
    now, s9_w, last = 0.0, 0.0, None
    for _ in range(900):  # the S9 starts on the surplus and settles
        now += 1.0
        last = _run(cfg, ctrl, _meas(now, -7500.0 + s9_w, s9_w), now)
        cmd = last.commands.by_name()["s9"]
        s9_w = cmd.power_target_w if cmd.run else 0.0
        if cmd.run and s9_w >= 600 and now > 400:
            break
    assert last is not None and last.commands.by_name()["s9"].run, "the S9 never started"
    fresh_until = now
    for _ in range(15):  # the meter goes silent: its last reading ages past the limit
        now += 1.0
        last = _run(cfg, ctrl, _meas(now, -7500.0 + s9_w, s9_w, at_s=fresh_until), now)
    assert "stale_meter" in {t.code for t in last.commands.trips}
    assert not last.commands.by_name()["s9"].run
    stopped_at = now
    s = None
    for _ in range(30):  # the meter is back: 7.5 kW to the grid, the S9 must rest
        now += 1.0
        last = _run(cfg, ctrl, _meas(now, -7500.0, 0.0), now)
        s = state_of(last, cfg, 1, "b")
    assert s is not None
    s9 = next(m for m in s.miners if m.name == "s9")
    assert s9.state == "off"
    assert s9.reason == "min_off", s9
    left = cfg.miners[0].min_off_s - (now - stopped_at)
    assert s9.reason_left_s is not None and abs(s9.reason_left_s - left) <= 2.0
    words = f"may start again in {math.ceil(left / 60)} min"  # rounded up: 4.5 min -> 5
    assert s9.why is not None and "minimum off time" in s9.why and words in s9.why, s9.why
    assert "spare solar" not in s.status and "charges first" not in s.status
    assert s.status.startswith("7.5 kW goes to the grid. s9: rests"), s.status
    assert words in s.status


def test_pause_says_which_miners_cannot_pause() -> None:
    """After Pause the Bitaxes (AxeOS: no pause) stay at their lowest power: the page says
    so instead of showing 18 W without a word."""
    cfg = _site()
    ctrl = Controller(cfg)
    o = Overrides(hold_reason="paused from the wall panel")
    m = _meas(10.0, -3000.0, 0.0)
    # AxeOS: no pause; the runtime's readings say so when the core has the field.
    no_pause = {"can_pause": False} if "can_pause" in MinerReading._fields else {}
    bx_r = MinerReading(9.0, 0.5, True, 10.0, **no_pause)
    m = m._replace(miners={**m.miners, "bitaxe-1": bx_r, "bitaxe-2": bx_r})
    rec = TickRecord(T0, 10.0, m, ctrl.step(m, 10.0, o), o, ctrl.debug, 0.0)
    s = state_of(rec, cfg, 1, "b")
    assert s.paused
    bx = next(x for x in s.miners if x.name == "bitaxe-1")
    assert bx.reason == "cannot_pause" and bx.why is not None and "9 W" in bx.why
    assert "bitaxe-1 and bitaxe-2 cannot pause" in s.status and "18 W" in s.status
    s9 = next(x for x in s.miners if x.name == "s9")
    assert s9.reason == "paused_by_user"


def test_no_spare_solar_is_only_said_when_nothing_goes_out() -> None:
    cfg = _site()
    rec = _run(cfg, Controller(cfg), _meas(1.0, 40.0, 0.0, pv_w=100.0), 1.0)
    s = state_of(rec, cfg, 1, "b")
    assert s.status in ("Not enough spare solar power for the miners right now.",
                        "Miners use the solar power the house does not need.") \
        or "charges first" in s.status
    # With export, whatever the limiter says, the status names the power going out or what
    # the miners do with it, never that there is no spare power.
    rec = _run(cfg, Controller(cfg), _meas(1.0, -2000.0, 0.0), 1.0)
    s = state_of(rec, cfg, 1, "b")
    assert "spare solar" not in s.status and "charges first" not in s.status, s.status
