"""Hardening (issue 17): one validation for every path that accepts a site config, strict
types, bounded strings, and safety settings bounded by physics and by the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import simkit

from controller.bridge import tomldoc
from controller.cli import main
from controller.config import parse_site
from controller.errors import InputError


def _errors(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputError) as ei:
        parse_site(d, "site.toml")
    return {p.where: p.reason for p in ei.value.problems}


def _bad_driver_site() -> dict[str, Any]:
    d = simkit.site_dict()
    d["miners"][0]["driver"] = {"api": "whatsminer-9000", "host": "192.0.2.10"}
    d["miners"][1]["driver"] = {"api": "axeos", "host": "192.0.2.11", "port": "abc"}
    return d


# -- item 1: the driver settings are part of the one validation --------------------------


def test_driver_settings_are_validated_with_the_site(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    errs = _errors(_bad_driver_site())
    assert "miners[0].driver.api" in errs and "whatsminer-9000" in errs["miners[0].driver.api"]
    assert "miners[1].driver.port" in errs
    p = tmp_path / "site.toml"
    p.write_text(tomldoc.dumps(_bad_driver_site()))
    assert main(["config", "check", str(p)]) == 2
    err = capsys.readouterr().err
    assert "miners[0].driver.api" in err and "miners[1].driver.port" in err


def test_a_driver_that_cannot_serve_the_actuation_is_refused_by_config_check() -> None:
    d = simkit.site_dict()
    d["miners"][0]["driver"] = {"api": "shelly", "host": "192.0.2.10"}  # relay, not a target
    errs = _errors(d)
    assert "power_target" in errs["miners[0].driver.api"]


def test_sites_without_driver_tables_still_validate_for_simulation() -> None:
    d = simkit.site_dict()
    for m in d["miners"]:
        m.pop("driver", None)
    assert parse_site(d).miners


# -- item 4: safety settings are bounded by physics and by the site -----------------------


def test_stale_timeout_is_at_most_a_minute() -> None:
    d = simkit.site_dict()
    d["control"]["stale_timeout_s"] = 1e12  # would turn the stale-meter cut off
    assert "less than or equal to 60" in _errors(d)["control.stale_timeout_s"]
    d["control"]["stale_timeout_s"] = 60
    assert parse_site(d).control.stale_timeout_s == 60


def test_miner_power_is_bounded_by_physics_and_by_the_site() -> None:
    d = simkit.site_dict()
    d["miners"][0]["max_power_w"] = 1e12
    d["miners"][0]["efficiency"][-1]["power_w"] = 1e12
    errs = _errors(d)
    assert "miners[0].max_power_w" in errs, errs
    # Above the import limit alone is allowed: it may run on surplus, the import cap keeps
    # it within the limit (HIL winter-night-tight-limit: an S9 under a 1200 W contract).
    d = simkit.site_dict()
    d["site"]["grid_import_limit_w"] = 1000  # below the S9's 1400 W
    assert parse_site(d).miners[0].max_power_w == 1400
    # Above everything the site can deliver (grid, inverter, battery) is not.
    d.pop("battery", None)  # 1000 W grid + 10 kW inverter
    d["miners"][0]["max_power_w"] = 14_000
    d["miners"][0]["efficiency"][-1]["power_w"] = 14_000
    errs = _errors(d)
    assert "the site can deliver" in errs["miners[0].max_power_w"], errs


def test_a_dr_cap_beyond_what_the_site_can_deliver_is_refused_at_the_input() -> None:
    from controller.bridge.commands import parse_command

    cfg = simkit.site()
    with pytest.raises(InputError) as ei:
        parse_command("dr_cap", {"cap_w": 1e12}, cfg)
    assert ei.value.problems[0].where == "cap_w"
    assert "the site can deliver" in ei.value.problems[0].reason
    assert parse_command("dr_cap", {"cap_w": cfg.site_power_bound_w}, cfg)


def test_openadr_caps_in_watts_are_bounded_by_the_site() -> None:
    from controller.config.openadr import OpenAdrSection
    from controller.runtime.openadr import EventMapper, Refused

    sec = OpenAdrSection.model_validate({"vtn_url": "https://vtn.example/OpenADR2/Simple/2.0b",
                                         "ven_name": "v", "load_control_capacity": "watts"})
    m = EventMapper(sec, 1444.0, 40_000.0)
    with pytest.raises(Refused, match="the site can deliver"):
        m._value("LOAD_CONTROL", "x-loadControlCapacity", 1e12, 1.0)
    d = simkit.site_dict()
    d["openadr"] = {"vtn_url": "https://vtn.example/OpenADR2/Simple/2.0b", "ven_name": "v",
                    "simple_level_cap_w": [1e12, 0, 0]}
    assert "the site can deliver" in _errors(d)["openadr.simple_level_cap_w[0]"]


# -- item 5: strict types and bounded strings -----------------------------------------------


@pytest.mark.parametrize(("section", "key", "value"), [
    ("control", "tick_s", "1"),  # a number as a string is not a number
    ("control", "surplus_policy", "mine"),  # not one of the two
    ("site", "main_fuse_a", "25"),
    ("site", "name", 12),
])
def test_types_are_strict(section: str, key: str, value: object) -> None:
    d = simkit.site_dict()
    d[section][key] = value
    assert f"{section}.{key}" in _errors(d)


def test_strings_are_bounded_and_free_of_nul() -> None:
    d = simkit.site_dict()
    d["site"]["name"] = "x" * 200_000
    assert "at most" in _errors(d)["site.name"]
    d["site"]["name"] = "bad\x00name"
    assert "NUL" in _errors(d)["site.name"]
    d = simkit.site_dict()
    d["miners"][0]["driver"]["host"] = "h\x00"
    assert "NUL" in _errors(d)["miners[0].driver.host"]


def test_money_and_enums_still_read_from_toml() -> None:
    d = simkit.site_dict()
    d["tariffs"] = {"import_price_per_kwh": "0.31", "export_price_per_kwh": 0.05}
    d["control"]["mode"] = "grid"
    cfg = parse_site(d)
    assert str(cfg.tariffs.import_price_per_kwh) == "0.31"
