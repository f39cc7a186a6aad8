"""Hardening (issue 17): one validation for every path that accepts a site config, strict
types, bounded strings, and safety settings bounded by physics and by the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import simkit

from controller.bridge import tomlwrite
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
    p.write_text(tomlwrite.dumps(_bad_driver_site()))
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
