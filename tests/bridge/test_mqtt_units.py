"""The bridge's pure parts: payload decoding, commands, TOML writing, provisioning store,
rate limit, telemetry payloads, HA discovery payloads (no broker needed here)."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simkit
from hypothesis import given
from hypothesis import strategies as st
from mqtt_testkit import HA_RULES, S9_SECRET, ha_discovery_problems

from controller.bridge import tomldoc
from controller.bridge.commands import (
    COMMANDS,
    PauseAll,
    SetDrAbsorb,
    SetDrCap,
    SetMinerEnabled,
    SetMinerPower,
    SetMode,
    SetTankTarget,
    parse_command,
)
from controller.bridge.discovery import announced_platforms, device_id, device_payload
from controller.bridge.messages import decode_json
from controller.bridge.provisioning import (
    REDACTED,
    ConfigStore,
    merge_patch,
    redact,
)
from controller.bridge.telemetry import (
    MinerStatus,
    RateLimiter,
    StateSnapshot,
    Today,
    state_payloads,
)
from controller.bridge.topics import Topics
from controller.config import parse_site
from controller.config.models import Mode
from controller.control.types import (
    Commands,
    Measurements,
    MinerCommand,
    MinerReading,
    Reading,
    Trip,
)
from controller.errors import InputError

HOUSE = simkit.site()


def _fields(err: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.where: p.reason for p in err.value.problems}


# -- decoding ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "is empty"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"x": NaN}', "not a number JSON allows"),
    (b'{"x": 1e999}', "out of range"),
    (b"[" * 100_000 + b"]" * 100_000, "too large"),
])
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(InputError) as ei:
        decode_json(payload, 4096, "cmd/x")
    assert reason in ei.value.problems[0].reason
    assert ei.value.problems[0].where == "payload"


def test_deep_nesting_within_the_size_limit_is_refused_not_crashing() -> None:
    with pytest.raises(InputError) as ei:
        decode_json(b"[" * 50_000 + b"]" * 50_000, 1 << 20, "config/set")
    assert "nested too deeply" in ei.value.problems[0].reason


# -- commands ----------------------------------------------------------------------------------

def test_valid_commands_are_normalised() -> None:
    assert parse_command("mode", {"mode": "heating"}, HOUSE) == SetMode(Mode.HEATING)
    assert parse_command("miner_power", {"miner": "s9", "power_w": 800}, HOUSE) == \
        SetMinerPower("s9", 800.0)
    assert parse_command("miner_power", {"miner": "s9", "power_w": None}, HOUSE) == \
        SetMinerPower("s9", None)
    assert parse_command("miner_power", {"miner": "s9", "power_w": 0}, HOUSE) == \
        SetMinerPower("s9", 0)
    assert parse_command("miner_enable", {"miner": "bitaxe-1", "enabled": False}, HOUSE) == \
        SetMinerEnabled("bitaxe-1", False)
    assert parse_command("pause_all", {"paused": True, "id": "r1"}, HOUSE) == PauseAll(True)
    assert parse_command("tank_target", {"target_c": 58.5}, HOUSE) == SetTankTarget(58.5)
    assert parse_command("tank_target", {"target_c": None}, HOUSE) == SetTankTarget(None)
    assert parse_command("dr_cap", {"cap_w": 1500, "duration_s": 600}, HOUSE) == \
        SetDrCap(1500.0, 600.0)
    assert parse_command("dr_cap", {"cap_w": None}, HOUSE) == SetDrCap(None, None)


@pytest.mark.parametrize(("name", "doc", "field", "reason"), [
    ("mode", {"mode": "island"}, "mode", "not switched at run time"),
    ("mode", {"mode": "turbo"}, "mode", "unknown mode"),
    ("mode", {"mode": 3}, "mode", "valid string"),
    ("mode", {}, "mode", "required key is missing"),
    ("mode", {"mode": "grid", "colour": 1}, "colour", "unknown key"),
    ("miner_power", {"miner": "s19", "power_w": 800}, "miner", "no miner named 's19'"),
    ("miner_power", {"miner": "s9", "power_w": 2000}, "power_w", "600..1400"),
    ("miner_power", {"miner": "s9", "power_w": -5}, "power_w", "must be 0"),
    ("miner_power", {"miner": "s9", "power_w": "800"}, "power_w", "valid number"),
    ("miner_power", {"miner": "s9", "power_w": True}, "power_w", "valid number"),
    ("miner_enable", {"miner": "s9", "enabled": "yes"}, "enabled", "valid boolean"),
    ("pause_all", {"paused": 1}, "paused", "valid boolean"),
    ("tank_target", {"target_c": 80}, "target_c", "below max_c (70)"),
    ("tank_target", {"target_c": 30}, "target_c", "above min_c (40)"),
    ("dr_cap", {"cap_w": -1}, "cap_w", "at least 0"),
    ("dr_cap", {"cap_w": None, "duration_s": 60}, "duration_s", "only applies"),
    ("dr_cap", {"cap_w": 100, "duration_s": 0}, "duration_s", "greater than 0"),
    ("reboot", {}, "command", "unknown command 'reboot'"),
    ("pause_all", [True], "payload", "must be a JSON object"),
])
def test_invalid_commands_name_the_field_and_reason(
    name: str, doc: Any, field: str, reason: str,
) -> None:
    with pytest.raises(InputError) as ei:
        parse_command(name, doc, HOUSE)
    errs = _fields(ei)
    assert field in errs, errs
    assert reason in errs[field], errs


def test_commands_respect_the_site_the_miners_actuation() -> None:
    farm = simkit.site(simkit.FARM)
    relay = next(m for m in farm.miners if m.actuation == "relay")
    with pytest.raises(InputError) as ei:
        parse_command("miner_power", {"miner": relay.name, "power_w": relay.max_power_w - 1},
                      farm)
    assert "relay" in _fields(ei)["power_w"]
    assert parse_command("miner_power", {"miner": relay.name, "power_w": relay.max_power_w},
                         farm) == SetMinerPower(relay.name, relay.max_power_w)
    no_tank = simkit.site(tank=None, miners=[dict(m, heats_tank=False)
                                              for m in simkit.site_dict()["miners"]])
    with pytest.raises(InputError) as ei:
        parse_command("tank_target", {"target_c": 50}, no_tank)
    assert "no tank" in _fields(ei)["target_c"]
    with pytest.raises(InputError) as ei:
        parse_command("mode", {"mode": "heating"}, no_tank)
    assert "needs a tank" in _fields(ei)["mode"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["mode", "miner", "power_w", "enabled", "paused",
                                       "target_c", "cap_w", "duration_s", "id", "x"])
                      | st.text(max_size=8), children, max_size=5),
    max_leaves=12,
)


@given(st.sampled_from([*COMMANDS, "nope", ""]), json_values)
def test_fuzzed_commands_are_either_valid_or_refused_with_reasons(name: str, doc: Any) -> None:
    try:
        cmd = parse_command(name, doc, HOUSE)
    except InputError as err:
        assert err.problems and all(p.reason for p in err.problems)
    else:
        assert type(cmd).__name__ in {"SetMode", "SetMinerPower", "SetMinerEnabled", "PauseAll",
                                      "SetTankTarget", "SetDrCap"}


# -- TOML writer -------------------------------------------------------------------------------

def test_example_sites_round_trip_through_the_toml_writer() -> None:
    for path in (simkit.HOUSE, simkit.FARM):
        doc = simkit.site_dict(path)
        text = tomldoc.dumps(doc)
        assert tomllib.loads(text) == doc
        assert parse_site(tomllib.loads(text)) == parse_site(doc)


toml_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False) | st.text())
toml_keys = st.text(min_size=1, max_size=12)
inline = st.recursive(toml_scalars, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(toml_keys, c, max_size=3), max_leaves=8)


@given(st.dictionaries(toml_keys, st.dictionaries(toml_keys, inline, max_size=4)
                       | st.lists(st.dictionaries(toml_keys, inline, max_size=3), min_size=1,
                                  max_size=3), max_size=4))
def test_toml_writer_round_trips_site_shaped_documents(doc: dict[str, Any]) -> None:
    assert tomllib.loads(tomldoc.dumps(doc)) == doc


# -- provisioning store ------------------------------------------------------------------------

def _store(tmp_path: Path) -> ConfigStore:
    d = simkit.site_dict()
    d["miners"][0]["driver"]["password"] = S9_SECRET
    path = tmp_path / "site.toml"
    path.write_text("# hand-written, with a comment\n" + tomldoc.dumps(d))
    return ConfigStore(path)


def test_invalid_patch_lists_every_error_and_changes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    before = store.path.read_bytes()
    with pytest.raises(InputError) as ei:
        store.propose(patch={"tank": {"max_c": 50}, "site": {"main_fuse_a": -1},
                             "control": {"colour": "red"}})
    assert _fields(ei) == {
        "tank.max_c": "must be above target_c (55.0)",
        "site.main_fuse_a": "Input should be greater than 0",
        "control.colour": "unknown key (typo?)",
    }
    assert store.path.read_bytes() == before and not store.prev_path.exists()


def test_commit_and_rollback_swap_current_and_previous(tmp_path: Path) -> None:
    store = _store(tmp_path)
    original = store.path.read_bytes()
    v0 = store.version
    p = store.propose(patch={"tank": {"target_c": 60}, "miners": simkit.site_dict()["miners"][:1]})
    assert p.changed == ["miners", "tank"]
    v1 = store.commit(p)
    assert v1 != v0 and store.config.tank is not None and store.config.tank.target_c == 60
    assert [m.name for m in store.config.miners] == ["s9"]
    assert store.prev_path.read_bytes() == original
    assert not list(tmp_path.glob("*.new"))
    back = store.rollback()
    store.commit(back)
    assert store.path.read_bytes() == original  # with its comment
    assert store.version == v0
    assert store.config.tank is not None and store.config.tank.target_c == 55


def test_site_id_cannot_change_and_mqtt_secrets_stay_out(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(InputError) as ei:
        store.propose(patch={"site": {"id": "other"}})
    assert "cannot change over MQTT" in _fields(ei)["site.id"]
    with pytest.raises(InputError) as ei:
        store.propose(patch={"mqtt": {"username": "h", "password_file": "x",
                                      "password": "hunter2"}})
    assert "must not be in the site file" in _fields(ei)["mqtt.password"]
    with pytest.raises(InputError) as ei:
        store.propose(document={"site": {}}, patch={})
    assert "exactly one" in _fields(ei)["payload"]


def test_secrets_are_redacted_and_a_redacted_value_pushed_back_keeps_the_secret(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    shown = store.redacted()
    assert shown["miners"][0]["driver"]["password"] == REDACTED
    assert S9_SECRET not in json.dumps(shown)
    # Reorder the miners and push the redacted document back: the secret follows its miner.
    shown["miners"].reverse()
    p = store.propose(document=shown)
    s9 = next(m for m in p.raw["miners"] if m["name"] == "s9")
    assert s9["driver"]["password"] == S9_SECRET
    # A redacted placeholder where there is no secret to keep is an error, not a password.
    shown["miners"][0]["driver"]["api_token"] = REDACTED
    with pytest.raises(InputError) as ei:
        store.propose(document=shown)
    assert "no current value to keep" in _fields(ei)["miners[0].driver.api_token"]
    assert redact({"mqtt": {"password_file": "/etc/x"}}) == {"mqtt": {"password_file": "/etc/x"}}


def test_text_that_cannot_be_stored_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    doc = decode_json(b'{"site": {"name": "\\ud800"}}', 4096, "config/set")
    with pytest.raises(InputError) as ei:
        store.propose(patch=doc)
    # refused by the strict string type, at the field (issue 17), before any writing
    assert "unicode" in _fields(ei)["site.name"]
    assert not store.prev_path.exists()


def test_merge_patch_follows_rfc_7396() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) \
        == {"a": {"c": 2, "e": 3}, "d": [2]}
    assert merge_patch({"a": 1}, {"a": {"x": None}}) == {"a": {}}


# -- telemetry ---------------------------------------------------------------------------------

def test_rate_limiter_publishes_changes_at_most_every_interval_and_refreshes() -> None:
    rl = RateLimiter(interval_s=5, refresh_s=60)
    assert rl.due("t", b"1", 0)
    rl.sent("t", b"1", 0)
    assert not rl.due("t", b"1", 1)  # unchanged
    assert not rl.due("t", b"2", 4.9)  # changed, but too soon
    assert rl.due("t", b"2", 5)
    rl.sent("t", b"2", 5)
    assert not rl.due("t", b"2", 64)
    assert rl.due("t", b"2", 65)  # refresh before the message expiry lapses
    rl.forget()
    assert rl.due("t", b"2", 65.1)


def test_snapshot_from_a_control_tick_and_its_payloads() -> None:
    m = Measurements(
        grid_power_w=Reading(-1234.4, 1.0), pv_power_w=Reading(5000.0, 1.0),
        battery_power_w=Reading(1000.0, 1.0), soc_pct=Reading(55.55, 1.0),
        tank_temp_c=Reading(51.26, 1.0),
        miners={"s9": MinerReading(1200.0, 14.2857, True, 1.0, 71.0)},
    )
    c = Commands((MinerCommand("s9", True, 1250.0), MinerCommand("bitaxe-1", False, 0.0)),
                 1250.0, "grid", "grid", (Trip("dr_cap", "cap"),))
    today = Today(datetime(2026, 5, 1, tzinfo=UTC), btc_value=Decimal("1.234567"),
                  heat_value=Decimal("0.61"), power_cost=Decimal("0.50005"),
                  net=Decimal("1.344517"), sats=1234, heat_kwh=5.5, miner_energy_kwh=6.0)
    snap = StateSnapshot.from_tick(m, c, today=today, paused=False, dr_cap_w=2000)
    p = state_payloads(snap, HOUSE)
    assert p["power"] == {"grid_power_w": -1234.0, "pv_power_w": 5000.0, "miner_power_w": 1200.0,
                          "house_power_w": 1566.0, "battery_power_w": 1000.0}
    assert p["battery"]["soc_pct"] == 55.5 or p["battery"]["soc_pct"] == 55.6
    assert p["tank"] == {"tank_temp_c": 51.3, "tank_target_c": 55.0}
    assert p["miners/s9"]["state"] == "running" and p["miners/s9"]["target_w"] == 1250
    assert p["miners/bitaxe-1"]["state"] == "unknown"  # commanded, never read back
    assert p["miners/bitaxe-2"]["power_w"] is None  # unknown, not 0
    assert p["control"]["trips"] == ["dr_cap"] and p["control"]["dr_cap_w"] == 2000
    assert p["today"]["btc_value"] == "1.2346" and p["today"]["sats"] == 1234
    assert (p["today"]["heat_value"], p["today"]["power_cost"], p["today"]["net"]) == (
        "0.6100", "0.5000", "1.3445")  # half to even
    assert "revenue" not in p["today"]  # one meaning per word: it was the BTC value alone
    assert p["today"]["currency"] == "EUR"
    # Energy balances: pv + grid = house + miners + battery.
    pw = p["power"]
    assert math.isclose(pw["pv_power_w"] + pw["grid_power_w"], pw["house_power_w"]
                        + pw["miner_power_w"] + pw["battery_power_w"], abs_tol=1)


def test_non_finite_readings_are_published_as_unknown() -> None:
    snap = StateSnapshot(grid_power_w=math.nan, miners={"s9": MinerStatus(power_w=math.inf)})
    p = state_payloads(snap, HOUSE)
    assert p["power"]["grid_power_w"] is None and p["miners/s9"]["power_w"] is None
    json.dumps(p, allow_nan=False)


# -- Home Assistant discovery ------------------------------------------------------------------

def test_discovery_payload_is_what_home_assistant_accepts() -> None:
    topics = Topics(HOUSE.site.id)
    payload = device_payload(HOUSE, topics, 300)
    topic = topics.discovery_topic(device_id(HOUSE))
    assert ha_discovery_problems(topic, json.loads(json.dumps(payload))) == []
    cmps = payload["cmps"]
    assert cmps["grid_power_w"]["device_class"] == "power"
    assert cmps["grid_power_w"]["state_class"] == "measurement"
    assert cmps["tank_temp_c"]["state_class"] == "measurement"
    assert "revenue_today" not in cmps
    for money in ("btc_value_today", "heat_value_today", "power_cost_today", "net_today"):
        assert cmps[money]["device_class"] == "monetary"
        assert cmps[money]["state_class"] == "total"
        assert cmps[money]["unit_of_measurement"] == "EUR"
        assert cmps[money]["last_reset_value_template"] == "{{ value_json.day_start }}"
        key = money.removesuffix("_today")
        assert cmps[money]["value_template"] == f"{{{{ value_json.{key} }}}}"
    for energy in ("miner_energy_today", "heat_energy_today"):
        assert cmps[energy]["device_class"] == "energy"
        assert cmps[energy]["state_class"] == "total_increasing"
        assert cmps[energy]["unit_of_measurement"] == "kWh"
    dash = HA_RULES["energy_dashboard"]
    energy_sensors = [c for c in cmps.values() if c.get("device_class") == dash["device_class"]]
    assert len(energy_sensors) == 2
    for c in energy_sensors:
        assert c["state_class"] in dash["state_classes"] and c["unit_of_measurement"] in \
            dash["units"]
    assert cmps["mode"]["options"] == ["grid", "heating"]
    assert {k for k, c in cmps.items() if c["p"] == "number"} == {
        "tank_target", "dr_cap", "dr_absorb"}
    assert {k for k, c in cmps.items() if c["p"] == "switch"} == {
        "pause_all", "miner_s9_enabled", "miner_bitaxe-1_enabled", "miner_bitaxe-2_enabled"}
    assert payload["availability"][0]["topic"] == "hearth/demo-house/availability"


def test_discovery_offers_the_dr_absorb_number_with_commands_the_bridge_takes() -> None:
    """HA renders the templates with Jinja; so does this test (jinja2 comes with openleadr)."""
    import jinja2

    topics = Topics(HOUSE.site.id)
    payload = device_payload(HOUSE, topics, 300)
    assert ha_discovery_problems(topics.discovery_topic(device_id(HOUSE)), payload) == []
    cap, absorb = payload["cmps"]["dr_cap"], payload["cmps"]["dr_absorb"]
    assert absorb["p"] == "number" and absorb["unique_id"] == f"{device_id(HOUSE)}_dr_absorb"
    assert absorb["command_topic"] == "hearth/demo-house/cmd/dr_absorb"
    assert absorb["state_topic"] == cap["state_topic"] == "hearth/demo-house/state/control"
    assert (absorb["device_class"], absorb["unit_of_measurement"]) == ("power", "W")
    assert absorb["min"] == 0 and 0 < absorb["max"] <= HOUSE.miner_capacity_w

    env = jinja2.Environment()

    def command(comp: dict[str, Any], value: float) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(env.from_string(comp["command_template"])
                                         .render(value=value))
        return doc

    def shown(comp: dict[str, Any], control: dict[str, Any]) -> str:
        return env.from_string(comp["value_template"]).render(value_json=control)

    # The same payload form as the cap's: one key, the number HA's box holds.
    assert parse_command("dr_cap", command(cap, 1500.0), HOUSE) == SetDrCap(1500.0, None)
    assert command(absorb, 900.0) == {"absorb_w": 900.0}
    assert parse_command("dr_absorb", command(absorb, 900.0), HOUSE) == SetDrAbsorb(900.0, None)
    assert parse_command("dr_absorb", command(absorb, absorb["max"]), HOUSE) == \
        SetDrAbsorb(float(absorb["max"]), None)
    # 0 in the box ends the request (absorb_w = 0 itself is refused by the bridge).
    assert command(absorb, 0.0) == {"absorb_w": None}
    assert parse_command("dr_absorb", command(absorb, 0.0), HOUSE) == SetDrAbsorb(None, None)
    assert shown(absorb, {"dr_absorb_w": 1200.0}) == "1200.0"
    assert shown(absorb, {"dr_absorb_w": None}) == "0"


def test_state_control_carries_the_absorption_in_force() -> None:
    from controller.bridge.service_glue import snapshot_of
    from controller.control.overrides import NO_OVERRIDES
    from controller.runtime.ports import TickRecord

    m = Measurements(grid_power_w=Reading(100.0, 1.0))
    c = Commands((MinerCommand("s9", True, 1000.0),), 1000.0, "grid", "dr_absorb", ())
    tick = TickRecord(datetime(2026, 5, 1, tzinfo=UTC), 1.0, m, c,
                      NO_OVERRIDES._replace(dr_absorb_w=1000.4, dr_cap_w=1300.0), None, 0.0)
    control = state_payloads(snapshot_of(tick), HOUSE)["control"]
    assert (control["dr_absorb_w"], control["dr_cap_w"]) == (1000.0, 1300.0)
    quiet = tick._replace(overrides=NO_OVERRIDES)
    control = state_payloads(snapshot_of(quiet), HOUSE)["control"]
    assert control["dr_absorb_w"] is None and control["dr_cap_w"] is None


def test_the_checker_catches_what_home_assistant_would_reject() -> None:
    topics = Topics(HOUSE.site.id)
    payload = device_payload(HOUSE, topics, 300)
    payload["cmps"]["grid_power_w"]["state_class"] = "total_increasing"
    payload["cmps"]["net_today"]["state_class"] = "measurement"
    payload["cmps"]["tank_temp_c"]["unit_of_measurement"] = "C"
    del payload["cmps"]["mode"]["options"]
    del payload["o"]
    problems = ha_discovery_problems(topics.discovery_topic("x"), payload)
    expected = ["root: missing o", "o: missing name",
                "cmps.grid_power_w: state_class total_increasing not allowed with power",
                "cmps.net_today: state_class measurement not allowed with monetary",
                "cmps.net_today: last_reset_value_template needs state_class total",
                "cmps.tank_temp_c: unit 'C' not valid for device_class temperature",
                "cmps.mode: select requires options"]
    assert len(problems) == len(expected), problems
    for e in expected:
        assert any(p.startswith(e) for p in problems), (e, problems)


def test_a_site_without_battery_or_tank_announces_no_such_entities() -> None:
    cfg = simkit.site(battery=None, tank=None, miners=[dict(m, heats_tank=False)
                                                       for m in simkit.site_dict()["miners"]])
    payload = device_payload(cfg, Topics(cfg.site.id), 300)
    assert not {"soc_pct", "battery_power_w", "tank_temp_c", "tank_target"} & set(payload["cmps"])
    assert payload["cmps"]["mode"]["options"] == ["grid"]
    removal = device_payload(cfg, Topics(cfg.site.id), 300, removed={"tank_temp_c": "sensor"})
    assert removal["cmps"]["tank_temp_c"] == {"p": "sensor"}
    assert "tank_temp_c" not in announced_platforms(removal)


# -- service glue ------------------------------------------------------------------------------

def test_commands_map_onto_the_controllers_overrides() -> None:
    from controller.bridge.service_glue import PAUSE_REASON, apply_command
    from controller.control.overrides import NO_OVERRIDES

    ov = NO_OVERRIDES
    for cmd in (SetMode(Mode.HEATING), SetTankTarget(60.0), SetDrCap(1500.0, None),
                SetMinerPower("s9", 800.0), SetMinerEnabled("bitaxe-1", False), PauseAll(True)):
        ov = apply_command(ov, cmd)
    assert (ov.mode, ov.tank_target_c, ov.dr_cap_w, ov.hold_reason) == \
        (Mode.HEATING, 60.0, 1500.0, PAUSE_REASON)
    assert dict(ov.manual_w) == {"s9": 800.0, "bitaxe-1": 0.0}
    ov = apply_command(ov, SetMinerEnabled("bitaxe-1", True))
    ov = apply_command(ov, SetMinerPower("s9", None))
    ov = apply_command(ov, PauseAll(False))
    ov = apply_command(ov, SetTankTarget(None))  # withdrawn: the plan's or the configured
    assert ov.tank_target_c is None
    ov = apply_command(ov, SetDrCap(None, None))
    assert dict(ov.manual_w) == {} and ov.hold_reason is None and ov.dr_cap_w is None
    # Resuming does not lift a hold the service set itself.
    held = NO_OVERRIDES._replace(hold_reason="start-up delay")
    assert apply_command(held, PauseAll(False)).hold_reason == "start-up delay"
    assert apply_command(held, PauseAll(True)).hold_reason == "start-up delay"
