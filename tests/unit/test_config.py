"""Site configuration: examples load, every error names its TOML path, CLI exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import simkit

from controller.cli import main
from controller.config import load_site, parse_site
from controller.errors import InputError


@pytest.mark.parametrize("path", sorted((simkit.ROOT / "hil" / "sites").glob("*.toml")))
def test_example_sites_are_valid(path: Path) -> None:
    cfg = load_site(path)
    assert cfg.miners
    assert cfg.site.import_limit_w > 0


def test_house_example_matches_the_issue() -> None:
    cfg = load_site(simkit.HOUSE)
    assert cfg.pv.peak_w == 10_000
    assert cfg.battery is not None and cfg.battery.capacity_kwh == 10
    assert cfg.tank is not None and cfg.tank.volume_l == 500
    s9 = cfg.miners[0]
    assert (s9.actuation, s9.min_power_w, s9.max_power_w) == ("power_target", 600, 1400)
    assert [m.kind for m in cfg.miners[1:]] == ["bitaxe-gamma", "bitaxe-gamma"]
    farm = load_site(simkit.FARM)
    assert any(m.actuation == "relay" and m.max_power_w >= 3000 for m in farm.miners)


def _errors(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputError) as ei:
        parse_site(d, "site.toml")
    return {p.where: p.reason for p in ei.value.problems}


def test_every_error_is_reported_with_its_path() -> None:
    d = simkit.site_dict()
    d["tank"]["max_c"] = 50
    d["miners"][1]["max_power_w"] = 5
    d["miners"][0]["colour"] = "red"
    d["battery"]["priority_soc_pct"] = 10
    del d["site"]["main_fuse_a"]
    errs = _errors(d)
    assert errs == {
        "tank.max_c": "must be above target_c (55.0)",
        "miners[1].max_power_w": "must be at least min_power_w (9.0)",
        "miners[0].colour": "unknown key (typo?)",
        "battery.priority_soc_pct": "must be at least reserve_soc_pct (20.0)",
        "site.main_fuse_a": "required key is missing",
    }


def test_optional_sections_and_cross_rules() -> None:
    d = simkit.site_dict()
    del d["battery"], d["tank"]
    for m in d["miners"]:
        m["heats_tank"] = False
    cfg = parse_site(d)
    assert cfg.battery is None and cfg.tank is None
    d["miners"][0]["heats_tank"] = True
    assert "no [tank] section" in next(iter(_errors(d).values()))
    d = simkit.site_dict()
    d["miners"][2]["name"] = "bitaxe-1"
    assert "duplicate" in _errors(d)["miners"]
    d = simkit.site_dict()
    d["miners"][0]["actuation"] = "profiles"
    assert _errors(d)["miners[0].profiles_w"] == "is required when actuation = 'profiles'"


def test_fuse_limit_is_used_when_lower_than_contract() -> None:
    d = simkit.site_dict()
    d["site"].update(grid_import_limit_w=50_000, main_fuse_a=16, phases=1)
    assert parse_site(d).site.import_limit_w == 16 * 230


def test_cli_check_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(simkit.HOUSE)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(simkit.HOUSE.read_text().replace("max_c = 70", "max_c = 40"))
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: tank.max_c: must be above target_c (55.0)" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("[site\nid = 1\n")
    assert main(["config", "check", str(broken)]) == 2
    assert "TOML syntax error" in capsys.readouterr().err
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "SiteConfig"
    assert {"site", "pv", "miners"} <= set(schema["required"])


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "hearth"
    r = subprocess.run([str(exe), "config", "check", str(simkit.HOUSE)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_island_mode_needs_a_battery_and_no_grid_meter() -> None:
    d = simkit.site_dict()
    d["control"]["mode"] = "island"
    assert not d.get("devices")  # no grid meter (nor any device) configured
    assert parse_site(d).control.mode == "island"
    del d["battery"]
    assert "needs a [battery] section" in _errors(d)["(top level)"]


def test_island_sites_need_no_grid_limits() -> None:
    """No grid, no grid limits to enter: export 0, import limited by the main fuse; a grid
    site without them is still refused, naming each field."""
    d = simkit.site_dict()
    d["control"]["mode"] = "island"
    del d["site"]["grid_import_limit_w"], d["site"]["grid_export_limit_w"]
    site = parse_site(d).site
    assert site.grid_export_limit_w == 0.0
    assert site.import_limit_w == site.main_fuse_limit_w == pytest.approx(
        d["site"]["main_fuse_a"] * 230.0 * d["site"].get("phases", 3))
    d["site"]["grid_import_limit_w"] = 2000.0  # given anyway: kept
    assert parse_site(d).site.import_limit_w == 2000.0
    del d["site"]["main_fuse_a"]  # the fuse is still required: it is physical
    assert "site.main_fuse_a" in _errors(d)
    d = simkit.site_dict()
    del d["site"]["grid_import_limit_w"], d["site"]["grid_export_limit_w"]
    errs = _errors(d)
    assert "site.grid_import_limit_w" in errs and "site.grid_export_limit_w" in errs
