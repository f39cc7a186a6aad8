"""`hearth installer push|get|rollback` against a running bridge over a real broker."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import brokerkit
import pytest
import simkit
from mqtt_testkit import ACL_TEXT, S9_SECRET, SITE, USERS, RunningBridge, installer_cli

from controller.bridge import tomldoc
from controller.errors import InputError


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[brokerkit.Broker, RunningBridge, list[str]]]:
    with brokerkit.Broker(tmp_path, users=USERS, acl=ACL_TEXT) as b, \
            RunningBridge(tmp_path / "site", b) as r:
        pw = tmp_path / "installer.pw"
        pw.write_text(USERS["installer"] + "\n")
        pw.chmod(0o600)
        common = ["--broker", f"127.0.0.1:{b.port}", "--site", SITE, "--username",
                  "installer", "--password-file", str(pw), "--timeout", "10"]
        yield b, r, common


def test_push_get_rollback(setup: tuple[brokerkit.Broker, RunningBridge, list[str]],
                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _broker, r, common = setup
    original = r.path.read_bytes()

    # get: TOML with the secret redacted.
    out = tmp_path / "current.toml"
    assert installer_cli(["installer", "get", *common, "--output", str(out)]) == 0
    doc = tomllib.loads(out.read_text())
    assert doc["miners"][0]["driver"]["password"] == "<redacted>"
    assert S9_SECRET not in out.read_text()

    # push the edited file back (redacted secret kept on the controller).
    doc["tank"]["target_c"] = 61
    out.write_text(tomldoc.dumps(doc))
    assert installer_cli(["installer", "push", str(out), *common]) == 0
    assert "changed: tank" in capsys.readouterr().out
    assert r.store.config.tank is not None and r.store.config.tank.target_c == 61
    assert r.store.config.miners[0].driver["password"] == S9_SECRET

    # a patch, as a dry run: nothing changes.
    patch = tmp_path / "patch.toml"
    patch.write_text("[control]\nexport_margin_w = 80\n")
    before = r.path.read_bytes()
    assert installer_cli(["installer", "push", str(patch), "--patch", "--dry-run", *common]) == 0
    assert "dry run" in capsys.readouterr().out and r.path.read_bytes() == before

    # rollback.
    assert installer_cli(["installer", "rollback", *common]) == 0
    assert r.path.read_bytes() == original


def test_a_refused_push_lists_every_error_and_exits_2(
    setup: tuple[brokerkit.Broker, RunningBridge, list[str]], tmp_path: Path,
) -> None:
    _broker, r, common = setup
    before = r.path.read_bytes()
    d = simkit.site_dict()
    d["tank"]["max_c"] = 50
    d["miners"][1]["max_power_w"] = 5
    bad = tmp_path / "bad.toml"
    bad.write_text(tomldoc.dumps(d))
    with pytest.raises(InputError) as ei:
        installer_cli(["installer", "push", str(bad), *common])
    assert {p.where: p.reason for p in ei.value.problems} == {
        "tank.max_c": "must be above target_c (55.0)",
        "miners[1].max_power_w": "must be at least min_power_w (9.0)",
    }
    assert r.path.read_bytes() == before
    not_toml = tmp_path / "x.toml"
    not_toml.write_text("[tank\n")
    with pytest.raises(InputError) as ei:
        installer_cli(["installer", "push", str(not_toml), *common])
    assert "not a TOML file" in ei.value.problems[0].reason


def test_connection_problems_exit_1_with_a_reason(
    setup: tuple[brokerkit.Broker, RunningBridge, list[str]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HEARTH_MQTT_USERNAME", raising=False)
    monkeypatch.delenv("HEARTH_MQTT_PASSWORD", raising=False)
    broker, _r, common = setup
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("nope\n")
    args = list(common)
    args[args.index("--password-file") + 1] = str(wrong)
    assert installer_cli(["installer", "get", *args]) == 1
    assert "refused the login" in capsys.readouterr().err
    # Home Assistant's account may not provision: the broker drops it (ACL).
    ha_pw = tmp_path / "ha.pw"
    ha_pw.write_text(USERS["homeassistant"])
    args = list(common)
    args[args.index("--password-file") + 1] = str(ha_pw)
    args[args.index("--username") + 1] = "homeassistant"
    assert installer_cli(["installer", "rollback", *args]) == 1
    assert "not authorized" in capsys.readouterr().err.lower()
    # Another site: nobody answers.
    args = list(common)
    args[args.index("--site") + 1] = "nosuchsite"
    args[args.index("--timeout") + 1] = "0.5"
    assert installer_cli(["installer", "get", *args]) == 1
    assert "no answer from the controller" in capsys.readouterr().err
    with pytest.raises(InputError) as ei:
        installer_cli(["installer", "get", "--broker", f"127.0.0.1:{broker.port}", "--site", SITE])
    assert {p.where for p in ei.value.problems} >= {"--username", "--password-file"}
