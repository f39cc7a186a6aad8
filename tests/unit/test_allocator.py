"""Allocator: efficiency order, ranges, steps, hysteresis, min on/off, hard shedding."""

from __future__ import annotations

import math

import simkit

from controller.config.models import MinerConfig
from controller.control.allocator import Allocator, Budgets


def _miner(name: str, lo: float, hi: float, jth: float, **kw: object) -> MinerConfig:
    base: dict[str, object] = {
        "name": name, "kind": "test", "actuation": "power_target", "min_power_w": lo,
        "max_power_w": hi, "efficiency": [{"power_w": hi, "j_per_th": jth}],
        "min_on_s": 300, "min_off_s": 300, "ramp_w_per_s": 10, "heats_tank": False,
        "target_resolution_w": 0,
    }
    base.update(kw)
    return MinerConfig.model_validate(base)


def _b(total: float, cap: float = math.inf, avail: float | None = None) -> Budgets:
    return Budgets(available_w=total if avail is None else avail, target_w=total,
                   tank_target_w=math.inf, hard_cap_w=cap, hard_tank_cap_w=math.inf)


def _alloc(*miners: MinerConfig, delay: float = 0.0) -> Allocator:
    return Allocator(list(miners), on_hysteresis_w=50, on_delay_s=delay, off_delay_s=delay)


def _targets(a: Allocator, b: Budgets, now: float, actual: dict[str, float] | None = None
             ) -> dict[str, float]:
    out = a.allocate(b, actual or {}, now, deadline_s=1.0)
    return {c.name: c.power_target_w for c in out.commands if c.run}


def test_most_efficient_first_each_within_its_range() -> None:
    a = _alloc(_miner("old", 600, 1400, 98), _miner("new", 10, 20, 17))
    assert _targets(a, _b(1000), 0) == {"new": 20, "old": 980}
    # Too little for the old one's minimum (plus hysteresis): only the efficient one runs.
    b = _alloc(_miner("old", 600, 1400, 98), _miner("new", 10, 20, 17))
    assert _targets(b, _b(640), 0) == {"new": 20}


def test_profiles_round_down_to_a_level_and_relays_are_all_or_nothing() -> None:
    prof = _miner("avalon", 400, 1200, 40, actuation="profiles", profiles_w=[400, 800, 1200])
    relay = _miner("s19", 3000, 3000, 30, actuation="relay")
    a = _alloc(prof, relay)
    assert _targets(a, _b(1100), 0) == {"avalon": 800}
    assert _targets(a, _b(4500), 400) == {"s19": 3000, "avalon": 1200}


def test_on_delay_and_hysteresis() -> None:
    a = _alloc(_miner("m", 600, 1400, 80), delay=60)
    assert _targets(a, _b(700), 0) == {}
    assert _targets(a, _b(700), 30) == {}
    assert _targets(a, _b(620), 45) == {}  # below min + hysteresis: the timer restarts
    assert _targets(a, _b(700), 50) == {}
    assert _targets(a, _b(700), 109) == {}
    assert _targets(a, _b(700), 110) == {"m": 700}


def test_min_on_time_holds_minimum_power_then_off_delay() -> None:
    a = _alloc(_miner("m", 600, 1400, 80, min_on_s=300), delay=60)
    _targets(a, _b(1000), 0)
    assert _targets(a, _b(1000), 60) == {"m": 1000}
    # Power falls away: it stays at its minimum until min_on and the off delay have passed.
    assert _targets(a, _b(100), 70) == {"m": 600}
    assert _targets(a, _b(100), 300) == {"m": 600}
    assert _targets(a, _b(100), 360) == {}
    # And it may not restart before min_off_s.
    assert _targets(a, _b(1000), 400) == {}
    assert _targets(a, _b(1000), 659) == {}
    assert _targets(a, _b(1000), 720) == {"m": 1000}


def test_hard_cap_sheds_at_once_overriding_min_on() -> None:
    a = _alloc(_miner("slow", 600, 1400, 80, ramp_w_per_s=10),
               _miner("fast", 10, 20, 17))
    _targets(a, _b(1420), 0)
    # A DR cap of 500 W arrives: the S9-class miner cannot ramp 900 W in one tick, and its
    # minimum is above the cap anyway, so it is paused; the efficient small one keeps going.
    out = a.allocate(_b(1420, cap=500), {"slow": 1400, "fast": 20}, 10, deadline_s=1.0)
    run = {c.name: c for c in out.commands}
    assert not run["slow"].run and run["fast"].run
    assert out.forced_off == ("slow",)


def test_hard_cap_within_ramp_reach_is_a_target_change_not_a_stop() -> None:
    a = _alloc(_miner("m", 600, 1400, 80, ramp_w_per_s=100))
    _targets(a, _b(1400), 0)
    out = a.allocate(_b(1400, cap=1350), {"m": 1400}, 10, deadline_s=1.0)
    assert out.forced_off == ()
    assert out.commands[0].power_target_w == 1350


def test_small_changes_are_not_sent() -> None:
    a = _alloc(_miner("m", 600, 1400, 80, target_resolution_w=10))
    assert _targets(a, _b(1000), 0) == {"m": 1000}
    assert _targets(a, _b(1006), 1) == {"m": 1000}  # +6 W: keep, no flash write
    assert _targets(a, _b(995), 2) == {"m": 995}  # lower: always follow a tighter budget
    assert _targets(a, _b(1010), 3) == {"m": 1010}


def test_example_sites_order_by_efficiency() -> None:
    cfg = simkit.site(simkit.FARM)
    a = Allocator(cfg.miners, 50, 0, 0)
    assert [m.name for m in a.miners] == ["s19", "s9"]


def test_off_time_starts_when_the_miner_is_seen_stopped_not_at_the_decision() -> None:
    """A pause that lands late (the miner was without power, booted, then got the retried
    pause) must not be followed by a resume a moment later: min_off_s counts from the first
    readback that shows it stopped. Found by the HIL controller-freeze scenario."""
    a = _alloc(_miner("s9", 600, 1400, 80, min_on_s=3, min_off_s=5, ramp_w_per_s=1000))
    assert _targets(a, _b(1400), 0) == {"s9": 1400}
    out = a.allocate(_b(1400, cap=0), {"s9": 1400}, 10, deadline_s=1.0)
    assert not any(c.run for c in out.commands)  # stopped at t=10
    # Its API is silent for a while (no readback), then it answers, running, until the
    # pause lands at t=18.
    for t in (11, 12, 13):
        a.allocate(_b(1400), {}, t, deadline_s=1.0)
    for t in (14, 15, 16, 17):
        out = a.allocate(_b(1400), {"s9": 900}, t, deadline_s=1.0, seen_running={"s9": True})
        assert not any(c.run for c in out.commands), f"resumed at t={t} before it stopped"
    a.allocate(_b(1400), {"s9": 0}, 18, deadline_s=1.0, seen_running={"s9": False})
    for t in (19, 20, 21):
        out = a.allocate(_b(1400), {"s9": 0}, t, deadline_s=1.0, seen_running={"s9": False})
        assert not any(c.run for c in out.commands), f"resumed at t={t}, 5 s not yet off"
    for t in (22.0, 22.5):
        out = a.allocate(_b(1400), {"s9": 0}, t, deadline_s=1.0, seen_running={"s9": False})
        assert not any(c.run for c in out.commands), f"resumed at t={t}, 5 s not yet off"
    out = a.allocate(_b(1400), {"s9": 0}, 23.0, deadline_s=1.0, seen_running={"s9": False})
    assert [c.name for c in out.commands if c.run] == ["s9"]


def test_a_late_pause_counts_from_its_confirmation_even_if_no_running_was_seen() -> None:
    """The HIL race: the miner booted while its one driver task was stuck in the failed
    pause write, and the retried pause landed before any tick saw it running."""
    a = _alloc(_miner("s9", 600, 1400, 80, min_on_s=3, min_off_s=5, ramp_w_per_s=1000))
    _targets(a, _b(1400), 0)
    a.allocate(_b(1400, cap=0), {"s9": 1400}, 10, deadline_s=1.0)  # stop decided
    for t in (11, 12, 13, 14):  # silent: no readback
        a.allocate(_b(1400), {}, t, deadline_s=1.0)
    for t in (14.5, 15, 16, 19):  # the pause landed: seen stopped from 14.5 on
        out = a.allocate(_b(1400), {"s9": 0}, t, deadline_s=1.0, seen_running={"s9": False})
        assert not any(c.run for c in out.commands), f"t={t}: 5 s count from 14.5, not 10"
    out = a.allocate(_b(1400), {"s9": 0}, 19.5, deadline_s=1.0, seen_running={"s9": False})
    assert [c.name for c in out.commands if c.run] == ["s9"]


def test_a_miner_found_running_after_a_restart_is_not_stopped_to_count_its_off_time() -> None:
    """Only a stop we decided waits for its confirmation: restored or initial state does not,
    so a miner found hashing when power is there keeps hashing."""
    a = _alloc(_miner("s9", 600, 1400, 80, min_on_s=3, min_off_s=5))
    out = a.allocate(_b(1400), {"s9": 1400}, 0, deadline_s=1.0, seen_running={"s9": True})
    assert [c.name for c in out.commands if c.run] == ["s9"]


# -- the on/off choice (issue 15): capture first, no swaps for a few watts, no starts into
#    import, the spread adds up, no-pause miners held at their minimum, reasons ------------

def test_a_running_miner_is_not_swapped_for_a_few_more_watts() -> None:
    """An S9 absorbs 1400 W of 1560 W; a bigger miner of the same efficiency (min 1500 W)
    could take all 1560 W, but its start loses its boot (restart_s at min power, spread over
    the start horizon, 200 W): 160 W more is not worth a swap. At 2600 W it is."""
    s19 = _miner("s19", 1500, 3300, 98, restart_s=120)
    s9 = _miner("s9", 600, 1400, 98, restart_s=90)
    a = _alloc(s19, s9)
    assert _targets(a, _b(1400), 0) == {"s9": 1400}
    assert _targets(a, _b(1560), 400) == {"s9": 1400}
    assert _targets(a, _b(1560), 1000) == {"s9": 1400}
    t = _targets(a, _b(2600), 1400)
    assert t["s19"] >= 1500 and sum(t.values()) <= 2600 + 1e-6


def test_two_inefficient_miners_give_way_to_an_idle_efficient_one_absorbing_as_much() -> None:
    """Two S9s (84 J/TH) take 2500 W; the S19 (29 J/TH) could take it all alone, with three
    times their hash rate. Same capture, so efficiency decides, start penalty included:
    the S19 starts and the S9s stop (after their minimum on-time)."""
    s19 = _miner("s19", 1500, 3300, 29, restart_s=120)
    s9a = _miner("s9a", 600, 1400, 84, restart_s=90)
    s9b = _miner("s9b", 600, 1400, 84, restart_s=90)
    a = _alloc(s19, s9a, s9b)
    for name in ("s9a", "s9b"):  # the S9s have run since t=0
        a.state[name].running, a.state[name].switched_at_s = True, 0.0
    assert set(_targets(a, _b(2500), 100)) == {"s9a", "s9b"}  # their minimum on-time
    assert _targets(a, _b(2500), 400) == {"s19": 2500}
    # Equal efficiency: captured watts and the start penalty alone decide (no swap).
    b = _alloc(_miner("big", 1500, 3300, 84, restart_s=120),
               _miner("s9a", 600, 1400, 84), _miner("s9b", 600, 1400, 84))
    for name in ("s9a", "s9b"):
        b.state[name].running, b.state[name].switched_at_s = True, 0.0
    assert set(_targets(b, _b(2500), 400)) == {"s9a", "s9b"}


def test_a_start_never_goes_into_import_but_a_running_set_rides_a_dip() -> None:
    a = _alloc(_miner("m", 600, 1400, 80, min_on_s=0, min_off_s=0), delay=60)
    assert _targets(a, _b(640), 0) == {}  # 600 + 50 W hysteresis does not fit in 640
    assert _targets(a, _b(640), 100) == {}
    _targets(a, _b(900), 200)
    assert _targets(a, _b(900), 260) == {"m": 900}
    # A dip below its minimum: it rides at its minimum for the off delay, then stops.
    assert _targets(a, _b(500), 300) == {"m": 600}
    assert _targets(a, _b(500), 359) == {"m": 600}
    assert _targets(a, _b(500), 360) == {}


def test_the_spread_leaves_their_minimum_to_the_miners_after() -> None:
    a = _alloc(_miner("big", 1500, 3300, 29), _miner("small", 600, 1400, 98))
    assert _targets(a, _b(4000), 0) == {"big": 3300, "small": 700}
    # Less power: the efficient one gives way down to what the other needs at least.
    assert _targets(a, _b(2200), 10) == {"big": 1600, "small": 600}


def test_identical_miners_are_one_choice_and_the_longest_stopped_starts() -> None:
    a = _alloc(_miner("a", 600, 1400, 80, min_off_s=0), _miner("b", 600, 1400, 80, min_off_s=0))
    assert _targets(a, _b(1000), 0) == {"a": 1000}
    assert _targets(a, _b(2500), 1) == {"a": 1400, "b": 1100}


def test_a_miner_that_cannot_pause_is_held_at_its_minimum_and_never_restarted() -> None:
    a = _alloc(_miner("bitaxe", 15, 20, 16, min_on_s=300, min_off_s=300),
               _miner("s9", 600, 1400, 80))
    a.no_pause = frozenset({"bitaxe"})
    out = a.allocate(_b(0), {}, 0, deadline_s=1.0)
    cmd = {c.name: c for c in out.commands}
    assert cmd["bitaxe"].run and cmd["bitaxe"].power_target_w == 15
    assert cmd["bitaxe"].reason == "cannot_pause"  # no room: it runs only for want of a pause
    out = a.allocate(_b(500), {"bitaxe": 15}, 1, deadline_s=1.0)
    assert {c.name: c.reason for c in out.commands}["bitaxe"] == ""
    assert not cmd["s9"].run
    for t in (10, 400, 800):
        out = a.allocate(_b(0), {"bitaxe": 15}, t, deadline_s=1.0)
        assert {c.name: c.run for c in out.commands}["bitaxe"]
    assert a.state["bitaxe"].switched_at_s == 0  # one start, never stopped


def test_each_miner_says_why_it_is_not_running_and_for_how_long() -> None:
    a = _alloc(_miner("m", 600, 1400, 80, min_on_s=300, min_off_s=300), delay=60)
    out = a.allocate(_b(100), {}, 0, deadline_s=1.0)
    assert (out.commands[0].reason, out.commands[0].reason_left_s) == ("no_room", None)
    out = a.allocate(_b(1000), {}, 10, deadline_s=1.0)
    assert out.commands[0].reason == "on_delay" and out.commands[0].reason_left_s == 60
    out = a.allocate(_b(1000), {}, 70, deadline_s=1.0)
    assert out.commands[0].run and out.commands[0].reason == ""
    out = a.allocate(_b(100), {"m": 1000}, 100, deadline_s=1.0)
    assert out.commands[0].reason == "off_delay"
    assert out.commands[0].reason_left_s == 270  # min_on holds it until t=370
    a.allocate(_b(100), {"m": 600}, 370, deadline_s=1.0)
    out = a.allocate(_b(1000), {"m": 0}, 400, deadline_s=1.0)
    assert out.commands[0].reason == "min_off" and out.commands[0].reason_left_s == 270


def test_a_hard_cap_never_stops_a_miner_that_cannot_pause() -> None:
    """Stopping it frees nothing (it stays at its minimum): no forced_off, no trip."""
    a = _alloc(_miner("bitaxe", 15, 20, 16), _miner("s9", 600, 1400, 80, ramp_w_per_s=1))
    a.no_pause = frozenset({"bitaxe"})
    _targets(a, _b(1420), 0)
    out = a.allocate(_b(1420, cap=10), {"bitaxe": 20, "s9": 1400}, 10, deadline_s=1.0)
    assert out.forced_off == ("s9",)
    assert {c.name: c.run for c in out.commands}["bitaxe"]
