"""Register maps as data: every shipped map loads; bad maps are refused with file, line,
field and reason; the codec and the read batching do what the vendors' tables need."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import load_site
from controller.config.devices import DeviceConfig
from controller.devices import codec
from controller.devices.plan import Point, plan_reads
from controller.devices.regmap import load_map, parse_map, shipped_maps
from controller.errors import InputError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
[map]
id = "mine"
title = "test meter"
source = "Vendor manual v1"
kind = "registers"
unit_id = 7

[[register]]
name = "power_w"
address = 100
type = "s32"
unit = "W"

[[register]]
name = "soc_pct"
address = 102
type = "u16"
unit = "%"
scale = 0.1

[measure]
grid_power_w = "-power_w"
soc_pct = "soc_pct"
"""


def _problems(text: str) -> str:
    with pytest.raises(InputError) as info:
        parse_map(text, Path("/maps/mine.toml"))
    assert info.value.source == "/maps/mine.toml"
    return info.value.render()


def test_every_shipped_map_loads_and_names_its_source() -> None:
    ids = shipped_maps()
    for expected in ("sunspec", "victron-gx", "sma-inverter", "sma-sunny-island",
                     "huawei-sun2000", "solaredge", "solaredge-hybrid", "fronius",
                     "fronius-gen24", "fronius-meter", "eastron-sdm630"):
        assert expected in ids
    for map_id in ids:
        dmap = load_map(map_id)
        assert dmap.id == map_id
        assert len(dmap.source) > 20, f"{map_id}: source document not named"
        assert dmap.measures, map_id
        text = dmap.path.read_text()
        assert text.lstrip().startswith("#"), f"{map_id}: no header comment with the source"


def test_a_good_user_map_parses() -> None:
    dmap = parse_map(GOOD, Path("/maps/mine.toml"))
    assert dmap.unit_id == 7
    assert dmap.measures["grid_power_w"][0].sign == -1
    assert dmap.registers["soc_pct"].scale == 0.1


def test_wrong_type_is_refused_with_line_and_field() -> None:
    text = GOOD.replace('type = "u16"', 'type = "u17"')
    msg = _problems(text)
    line = text.splitlines().index('type = "u17"') + 1
    assert f"/maps/mine.toml: line {line}: register[1] (soc_pct).type" in msg
    assert "unknown type 'u17'" in msg


def test_overlapping_registers_are_refused() -> None:
    # power_w is s32 at 100..101; a register at 101 overlaps it.
    msg = _problems(GOOD.replace("address = 102", "address = 101"))
    assert "register[1] (soc_pct).address" in msg
    assert "overlaps register 'power_w' (holding 100..101)" in msg


def test_unknown_fields_are_refused_everywhere() -> None:
    msg = _problems(GOOD.replace('unit = "%"', 'unit = "%"\nscael = 2')
                    .replace("unit_id = 7", "unit_id = 7\ntimout_s = 3")
                    .replace('soc_pct = "soc_pct"', 'soc_pct = "soc_pct"\nsoc = "soc_pct"')
                    + "\n[extra]\nx = 1\n")
    assert "register[1] (soc_pct).scael: unknown field (typo?)" in msg
    assert "map.timout_s: unknown field (typo?)" in msg
    assert "measure.soc: unknown quantity" in msg
    assert "extra: unknown section" in msg
    # Each problem names its line.
    assert all(": line " in ln for ln in msg.splitlines())


def test_measure_references_and_units_are_checked() -> None:
    msg = _problems(GOOD.replace('grid_power_w = "-power_w"', 'grid_power_w = "-powr_w"'))
    assert "measure.grid_power_w: '-powr_w'" not in msg  # the sign is not part of the name
    assert "'powr_w': no register with that name" in msg
    msg = _problems(GOOD.replace('soc_pct = "soc_pct"', 'soc_pct = "power_w"'))
    assert "unit 'W' does not match the quantity's '%'" in msg
    msg = _problems(GOOD.replace('grid_power_w = "-power_w"', 'grid_power_w = "103:W"'))
    assert "model points need map.kind = 'sunspec'" in msg


def test_sunspec_map_points_are_checked_against_the_model_table() -> None:
    text = GOOD.replace('kind = "registers"', 'kind = "sunspec"').replace(
        'grid_power_w = "-power_w"', 'grid_power_w = "203:Watts|999:W"')
    msg = _problems(text)
    assert "'203:Watts': no point 'Watts' in the model" in msg
    assert "SunSpec model 999 is not in sunspec_models.toml" in msg


def test_missing_header_and_bad_values() -> None:
    msg = _problems(GOOD.replace('source = "Vendor manual v1"', 'source = ""')
                    .replace("unit_id = 7", "unit_id = 300"))
    assert "map.source: required: name the vendor document" in msg
    assert "map.unit_id: must be 0..255" in msg
    assert "TOML syntax error" in _problems("[map\n")


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_s32_round_trips_in_both_word_orders(v: int, order: str) -> None:
    words = codec.encode_raw(v, "s32", order)  # type: ignore[arg-type]
    assert all(0 <= w <= 0xFFFF for w in words)
    assert codec.decode_raw(words, "s32", order) == v  # type: ignore[arg-type]


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_round_trips(v: float) -> None:
    for order in ("big", "little"):
        assert codec.decode_raw(codec.encode_raw(v, "float32", order), "float32",
                                order) == v  # type: ignore[arg-type]


def test_word_order_and_sentinels() -> None:
    # 0x00012345 high word first vs low word first.
    assert codec.decode_raw([0x0001, 0x2345], "u32", "big") == 0x12345
    assert codec.decode_raw([0x2345, 0x0001], "u32", "little") == 0x12345
    assert codec.is_missing(-0x8000, "s16", codec.SENTINELS["sunspec"]["s16"])
    assert codec.is_missing(math.nan, "float32", ())
    assert not codec.is_missing(0, "s16", codec.SENTINELS["sunspec"]["s16"])


def _pt(addr: int, type_: str = "u16") -> Point:
    return Point(f"r{addr}", "holding", addr, type_, "big", 1.0, "W", ())


def test_reads_are_batched_only_over_contiguous_or_declared_spans() -> None:
    pts = [_pt(10), _pt(11), _pt(12, "u32"), _pt(20), _pt(30)]
    assert [(b.address, b.count) for b in plan_reads(pts, 125)] == [(10, 4), (20, 1), (30, 1)]
    joined = plan_reads(pts, 125, [("holding", 10, 30)])
    assert [(b.address, b.count) for b in joined] == [(10, 21)]
    split = plan_reads([_pt(a) for a in range(0, 200)], 125)
    assert [(b.address, b.count) for b in split] == [(0, 125), (125, 75)]


def test_device_config_checks_transport_fields() -> None:
    with pytest.raises(ValueError, match="transport 'tcp' needs host"):
        DeviceConfig(name="m", role="grid_meter", map="eastron-sdm630")
    with pytest.raises(ValueError, match="transport 'rtu' needs serial_port"):
        DeviceConfig(name="m", role="grid_meter", map="eastron-sdm630", transport="rtu")
    with pytest.raises(ValueError, match="not quantities of role 'grid_meter'"):
        DeviceConfig(name="m", role="grid_meter", map="x", host="h", provides=["soc_pct"])


def test_example_sites_without_devices_still_load() -> None:
    for site in sorted((REPO / "hil" / "sites").glob("*.toml")):
        assert load_site(site).devices == []
