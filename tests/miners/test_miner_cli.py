"""`hearth miners` end to end: a site file pointing at emulators on real sockets."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest
from miner_harness import MINERS, TEST_TIMEOUT_S, free_port, site

from controller.errors import InputError
from controller.miners.axeos import PowerCurve
from controller.miners.cli import register
from hil.miners.axeos import AxeOsEmulator
from hil.miners.braiins import BraiinsEmulator
from hil.miners.core import EmulatedMiner
from hil.miners.shelly import ShellyEmulator


def run_cli(argv: list[str]) -> int:
    """What controller/cli.py does with a registered sub-command (InputError -> exit 2)."""
    p = argparse.ArgumentParser(prog="hearth")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    try:
        rc: int = args.func(args)
    except InputError as err:
        print(err.render())
        return 2
    return rc


def _toml(v: object) -> str:
    """A TOML inline value (numbers, strings, lists, inline tables)."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v)


def _toml_miner(name: str, kind: str, driver: dict[str, object]) -> str:
    lines = [f'[[miners]]\nname = "{name}"\nheats_tank = false']
    lines += [f"{k} = {_toml(v)}" for k, v in MINERS[kind].items()]
    lines.append(f"driver = {_toml(driver)}")
    return "\n".join(lines) + "\n"


SITE_HEAD = """
[site]
id = "cli-test"
grid_import_limit_w = 10000
grid_export_limit_w = 8000
main_fuse_a = 25

[pv]
peak_w = 8000
inverter_max_w = 8000
"""


@pytest.fixture
async def plant(tmp_path: Path) -> object:
    cfgs = site([{"name": "s9", **MINERS["continuous"], "heats_tank": False},
                 {"name": "plug", **MINERS["relay"], "heats_tank": False},
                 {"name": "axe", **MINERS["bitaxe"], "heats_tank": False}]).miners
    s9, plug, axe = (EmulatedMiner(c) for c in cfgs)
    b = await BraiinsEmulator(s9, password="pw").start()
    sh = await ShellyEmulator(plug).start()
    ax = await AxeOsEmulator(axe, PowerCurve.load("bitaxe-gamma")).start()
    common = {"host": "127.0.0.1", "timeout_s": TEST_TIMEOUT_S, "settle_margin_s": 1.0}
    path = tmp_path / "site.toml"
    path.write_text(SITE_HEAD
                    + _toml_miner("s9", "continuous", {"api": "braiins-os", "port": b.port,
                                                       "password": "pw", **common})
                    + _toml_miner("plug", "relay", {"api": "shelly", "port": sh.port, **common})
                    + _toml_miner("axe", "bitaxe", {"api": "axeos", "port": ax.port,
                                                    "min_write_interval_s": 0, **common}))
    yield path, s9, plug, axe
    for e in (b, sh, ax):
        await e.stop()


async def test_miners_shows_each_miners_state(plant: tuple[Path, EmulatedMiner, ...],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = plant[0]
    rc = await asyncio.to_thread(run_cli, ["miners", "--config", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [m["name"] for m in out] == ["s9", "plug", "axe"]
    assert {m["state"] for m in out} == {"running"}
    assert out[0]["api"] == "braiins-os" and out[0]["power_w"] == pytest.approx(600, abs=1)
    rc = await asyncio.to_thread(run_cli, ["miners", "--config", str(path)])
    text = capsys.readouterr().out
    assert rc == 0 and "s9" in text and "braiins-os" in text and "running" in text


async def test_miners_set_reports_what_the_miner_did(plant: tuple[Path, EmulatedMiner, ...],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, s9 = plant[0], plant[1]
    rc = await asyncio.to_thread(run_cli, ["miners", "set", "s9", "--watts", "1000",
                                           "--config", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["action"] == "sent" and out["confirmed_w"] == 1000 and out["settled"]
    assert out["now"]["power_w"] == pytest.approx(1000, abs=50)
    assert s9.power_writes == [1000.0]
    rc = await asyncio.to_thread(run_cli, ["miners", "set", "s9", "--watts", "5000",
                                           "--config", str(path)])
    text = capsys.readouterr().out
    assert rc == 0 and "clamped 1400 W" in text and "settled" in text
    rc = await asyncio.to_thread(run_cli, ["miners", "set", "plug", "--pause",
                                           "--config", str(path)])
    text = capsys.readouterr().out
    assert rc == 0 and "plug (shelly): sent" in text and plant[2].paused


async def test_miners_set_exit_codes_for_refusals_and_bad_input(
        plant: tuple[Path, EmulatedMiner, ...], capsys: pytest.CaptureFixture[str]) -> None:
    path = plant[0]
    rc = await asyncio.to_thread(run_cli, ["miners", "set", "axe", "--pause",
                                           "--config", str(path)])
    assert rc == 1 and "no pause" in capsys.readouterr().out
    rc = await asyncio.to_thread(run_cli, ["miners", "set", "nope", "--watts", "5",
                                           "--config", str(path)])
    assert rc == 2 and "no miner 'nope'" in capsys.readouterr().out
    rc = await asyncio.to_thread(run_cli, ["miners", "set", "s9", "--watts", "-3",
                                           "--config", str(path)])
    assert rc == 2 and "--watts" in capsys.readouterr().out
    rc = await asyncio.to_thread(run_cli, ["miners"])
    assert rc == 2 and "--config" in capsys.readouterr().out


async def test_unreachable_miner_makes_the_overview_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dead.toml"
    path.write_text(SITE_HEAD + _toml_miner("ghost", "continuous", {
        "api": "braiins-os", "host": "127.0.0.1", "port": free_port(), "timeout_s": 0.5}))
    rc = await asyncio.to_thread(run_cli, ["miners", "--config", str(path)])
    text = capsys.readouterr().out
    assert rc == 1 and "unavailable" in text and "connection failed" in text
