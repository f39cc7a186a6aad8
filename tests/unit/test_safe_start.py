"""Item 1 of issue 17: what `hearth run` starts from when its site file does not load
(controller/config/salvage.py, controller/runtime/startup.py). The process itself, with a
real broker, is in tests/bridge/test_mqtt_safe_mode.py."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import simkit

from controller.bridge import tomldoc
from controller.bridge.provisioning import ConfigStore
from controller.config.salvage import salvage_site
from controller.errors import InputError
from controller.runtime.startup import keep_last_good, last_good_path, read_start

MQTT = {"host": "127.0.0.1", "port": 18830, "username": "hearth", "password_file": "pw"}


def _doc(**sections: Any) -> dict[str, Any]:
    d = simkit.site_dict()
    d["mqtt"] = dict(MQTT)
    for k, v in sections.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


def test_each_section_is_salvaged_on_its_own() -> None:
    d = _doc(control={"stale_timeout_s": 1e12})
    d["miners"][1]["max_power_w"] = "lots"
    s = salvage_site(d)
    assert s is not None and s.reachable
    assert s.config.site.id == "demo-house" and s.config.mqtt is not None
    assert [m.name for m in s.config.miners] == ["s9", "bitaxe-2"]
    assert s.left_out == ["miners[1]"]
    assert s.config.control.stale_timeout_s <= 60  # the defaults, not the refused value


def test_an_invalid_hmi_is_not_opened_on_defaults_and_a_site_needs_an_id() -> None:
    s = salvage_site(_doc(hmi={"listen_host": "127.0.0.1", "listen_port": 0}))
    assert s is not None and not s.config.hmi.enabled and s.reachable  # through MQTT
    s = salvage_site(_doc(hmi={"listen_port": 0}, mqtt=None))
    assert s is not None and not s.reachable
    assert salvage_site(_doc(site={"id": "Not An Id"})) is None
    # an invalid [site] keeps its id (the topics), an invalid [service] its data_dir
    s = salvage_site(_doc(site={"id": "x1", "grid_import_limit_w": -1},
                          service={"data_dir": "/srv/h", "start_delay_max_s": -5}))
    assert s is not None and s.config.site.id == "x1" and s.config.service.data_dir == "/srv/h"


def test_a_valid_file_runs_and_is_kept_as_the_last_good_copy(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(tomldoc.dumps(_doc()))
    path.chmod(0o640)
    start = read_start(path)
    assert start.safe_reason is None and start.data == path.read_bytes()
    keep_last_good(path, start.data)
    good = last_good_path(path)
    assert good.read_bytes() == path.read_bytes() and good.stat().st_mode & 0o777 == 0o640
    mtime = good.stat().st_mtime_ns
    keep_last_good(path, start.data)  # unchanged: not rewritten (SD card wear)
    assert good.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("breakage", [b"[control\n", b"\xff\xfe not utf-8", None])
def test_a_file_that_does_not_parse_is_reached_through_its_last_good_copy(
        tmp_path: Path, breakage: bytes | None) -> None:
    path = tmp_path / "site.toml"
    good = _doc()
    last_good_path(path).write_text(tomldoc.dumps(good))
    if breakage is not None:
        path.write_bytes(breakage)
    start = read_start(path)
    assert start.safe_reason is not None and "site.toml.last-good" in start.safe_reason
    assert start.document == tomllib.loads(tomldoc.dumps(good))
    # the store edits that document and writes the site file anew
    store = ConfigStore(path, running=(start.config, start.document))
    store.commit(store.propose(patch={"site": {"name": "fixed"}}))
    assert tomllib.loads(path.read_text())["site"]["name"] == "fixed"


def test_the_previous_version_is_the_fallback_and_without_one_it_exits(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[site\n")
    with pytest.raises(InputError) as ei:
        read_start(path)
    assert "no last good copy" in ei.value.render()
    path.with_name("site.toml.prev").write_text(tomldoc.dumps(_doc()))
    start = read_start(path)
    assert start.safe_reason is not None and "site.toml.prev" in start.safe_reason
