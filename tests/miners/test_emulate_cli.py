"""`hearth emulate` end to end: the command line parsed by `hearth`'s own parser, the
emulators on real sockets, reached by Hearth's own drivers. In-process (the `hearth` entry
point takes ~20 s to import on a loaded test machine; the parser is the same object)."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from pathlib import Path

import pytest
from miner_harness import free_port, site, wait_for

from controller.cli import build_parser
from controller.config import load_site
from controller.errors import InputError
from controller.miners.base import State
from controller.miners.factory import build_drivers
from controller.miners.profiles import load_profile, profile_names
from hil.miners.cli import run_miner, run_site

ROOT = Path(__file__).resolve().parents[2]


async def _running(coro: object, capsys: pytest.CaptureFixture[str], marker: str,
                   ) -> tuple[asyncio.Task[int], str]:
    task: asyncio.Task[int] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
    seen: list[str] = []

    def printed() -> bool:
        seen.append(capsys.readouterr().out)
        if task.done():
            task.result()  # raise what the command raised
        return marker in "".join(seen)

    await wait_for(printed, timeout_s=20)
    return task, "".join(seen)


async def _stop(task: asyncio.Task[int]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_emulate_miner_serves_a_profile_that_hearths_driver_reads(
        capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    args = build_parser().parse_args(["emulate", "miner", "--api", "avalon", "--port",
                                      str(port), "--profile", "avalon-q"])
    task, out = await _running(run_miner(args), capsys, "level_command")
    try:
        assert f"127.0.0.1:{port}" in out and "800..1674 W" in out
        prof = load_profile("avalon-q")
        entry = prof.miner_entry("q", {"api": "avalon", "host": "127.0.0.1", "port": port,
                                       "level_command": "workmode"})
        drv = build_drivers(site([entry]))["q"]
        try:
            st = await drv.read()
            assert st.state is State.RUNNING and st.power_w > 700, st
            res = await drv.set_power(800)
            assert res.action == "sent" and res.confirmed_w == 800, res
        finally:
            await drv.close()
    finally:
        await _stop(task)


async def test_emulate_miner_refuses_a_profile_of_another_api() -> None:
    args = build_parser().parse_args(["emulate", "miner", "--api", "vnish", "--port",
                                      str(free_port()), "--profile", "avalon-q"])
    with pytest.raises(InputError, match="'avalon-q' speaks 'avalon', not 'vnish'"):
        await run_miner(args)


async def test_emulate_site_writes_a_site_file_hearth_run_can_use(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["emulate", "site", "--config",
                                      str(ROOT / "hil/sites/house-10kwp.toml"),
                                      "--out", str(tmp_path)])
    task, _ = await _running(run_site(args), capsys, "hearth run --config")
    try:
        drivers = build_drivers(load_site(tmp_path / "site.toml"))
        try:
            states = [(await d.read()).state for d in drivers.values()]
        finally:
            for d in drivers.values():
                await d.close()
        assert len(states) == 3 and State.UNAVAILABLE not in states, states
        raw = tomllib.loads((tmp_path / "site.toml").read_text())
        assert raw["devices"][0]["port"] > 0  # the Modbus GX meter, for hearth run
    finally:
        await _stop(task)


@pytest.mark.parametrize("name", profile_names())
def test_every_profile_loads_and_names_its_source(name: str) -> None:
    prof = load_profile(name)
    assert prof.source and prof.verified_on_hardware is False
    # The model part of a [[miners]] entry (the driver table is validated with the site
    # since issue 17: an AxeOS profile's entry also needs a curve that covers its range).
    entry = prof.miner_entry("m", {})
    cfg = site([entry]).miners[0]  # a valid [[miners]] entry
    assert cfg.max_power_w == prof.max_power_w
