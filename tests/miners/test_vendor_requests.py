"""Each driver's requests and parsing, pinned to the published document or client it follows.

The emulators record every request as it arrived on the wire (`Emulator.seen`); these tests
assert the exact form the cited source uses, so a driver that drifts from it fails here
before it fails on hardware. Sources (see docs/miners.md):
- Whatsminer API v3: MicroBT's v3 Python example `whatsminer_interface.py`
  (set_miner_power_percent sends `percent` as a string); pyasic 0.79 `rpc/btminer.py`.
- Vnish: pyasic 0.79 `web/vnish.py` (bare token except `system/*`; set_power_limit reads
  `settings` and POSTs the `overclock` section back) and `miners/backends/vnish.py`.
- LuxOS: the LuxOS API documentation and luxos-tooling `api.json` (session id first).
- AxeOS pause: ESP-Miner `openapi.yaml` (`/api/system/pause`, `miningPaused`).
- Avalon: Avalon API document (LW10583/AvalonMinerTools, Nano 3S, API 3.7: `workmode`);
  pyasic 0.79 `miners/backends/avalonminer.py` (`worklevel`).
"""

from __future__ import annotations

import logging

import pytest
from miner_harness import miner_entry, rig, site

from controller.miners.factory import build_drivers
from controller.miners.whatsminer import WhatsminerDriver
from hil.miners.avalon import AvalonEmulator
from hil.miners.vnish import VnishEmulator

# -- Whatsminer API v3 ----------------------------------------------------------------------


async def test_whatsminer_sends_the_percent_as_a_string_in_param() -> None:
    async with rig("whatsminer") as rg:
        assert isinstance(rg.driver, WhatsminerDriver)
        res = await rg.driver.set_power(2000)
        assert res.action == "sent", res
        (req,) = [r for r in rg.emulator.seen if r.get("cmd") == "set.miner.power_percent"]
        assert req["param"] == {"percent": "67", "mode": "fast"}
        assert set(req) == {"cmd", "param", "ts", "account", "token"}


async def test_whatsminer_emulator_refuses_a_numeric_percent_like_the_firmware() -> None:
    # The firmware reads the percent with cJSON valuestring: a number is not taken.
    async with rig("whatsminer") as rg:
        assert isinstance(rg.driver, WhatsminerDriver)
        rg.driver._write_target = _numeric_percent(rg.driver)  # type: ignore[method-assign]
        res = await rg.driver.set_power(2000)
        assert res.action == "refused" and "invalid percent" in res.reason, res
        assert rg.miner.power_writes == []


def _numeric_percent(d: WhatsminerDriver):  # type: ignore[no-untyped-def]
    async def write(target_w: float) -> None:
        await d._set("set.miner.power_percent",
                     {"percent": d.percent_for(target_w), "mode": "fast"})
    return write


async def test_whatsminer_readback_compares_the_percent_not_the_power_limit() -> None:
    # A percent write leaves power-limit alone (it is set.miner.power_limit's cap): the
    # readback must not call a write that worked "not applied" because power-limit stayed.
    async with rig("whatsminer") as rg:
        res = await rg.driver.set_power(1500)
        assert res.action == "sent", res
        assert res.confirmed_w == pytest.approx(1500, abs=30)
        st = await rg.driver.read()
        assert st.target_w == pytest.approx(1500, abs=30)
        (summary,) = [r for r in rg.emulator.seen[-3:] if r.get("cmd") == "get.miner.status"]
        assert summary["param"] == "summary"


async def test_whatsminer_power_limit_narrows_the_range() -> None:
    async with rig("whatsminer") as rg:
        rg.emulator.power_limit_w = 2400  # type: ignore[attr-defined]
        res = await rg.driver.set_power(3000)
        assert res.action == "clamped" and res.sent_w == pytest.approx(2400, abs=30), res


async def test_whatsminer_answers_device_info_without_a_parameter() -> None:
    async with rig("whatsminer") as rg:
        from controller.miners.transport import whatsminer_request

        reply = await whatsminer_request("127.0.0.1", rg.emulator.port,
                                         {"cmd": "get.device.info"})
        assert reply["code"] == 0
        assert {"miner", "system", "network"} <= set(reply["msg"])
        bad = await whatsminer_request("127.0.0.1", rg.emulator.port,
                                       {"cmd": "get.device.info", "param": "nonsense"})
        assert bad["code"] != 0 and bad["desc"] == "get.device.info"


# -- Vnish ----------------------------------------------------------------------------------


async def test_vnish_sends_the_bare_token_and_posts_the_overclock_section_back() -> None:
    async with rig("vnish") as rg:
        assert isinstance(rg.emulator, VnishEmulator)
        res = await rg.driver.set_power(1500)
        assert res.action == "sent" and res.confirmed_w == 1500, res
        token = next(iter(rg.emulator.tokens))
        authed = [r for r in rg.emulator.seen if r["path"] != "/api/v1/unlock"]
        assert authed and all(r["authorization"] == token for r in authed)
        (post,) = [r for r in authed if r["method"] == "POST"
                   and r["path"] == "/api/v1/settings"]
        # The whole overclock section as read back, preset replaced (pyasic set_power_limit)
        assert post["body"] == {"miner": {"overclock": {
            "preset": "1500", "globals": {"volt": 1350, "freq": 500}, "modded_psu": False,
            "chains": []}}}
        i_post = rg.emulator.seen.index(post)
        assert rg.emulator.seen[i_post - 1]["method"] == "GET"
        assert rg.emulator.seen[i_post - 1]["path"] == "/api/v1/settings"


async def test_vnish_emulator_wants_bearer_only_on_system_paths() -> None:
    import aiohttp

    async with rig("vnish") as rg:
        base = f"http://127.0.0.1:{rg.emulator.port}/api/v1"
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/unlock", json={"pw": "admin"}) as r:
                token = (await r.json())["token"]
            for path, header, status in (("/summary", token, 200),
                                         ("/summary", f"Bearer {token}", 401),
                                         ("/system/info", f"Bearer {token}", 200),
                                         ("/system/info", token, 401)):
                async with s.get(base + path, headers={"Authorization": header}) as r:
                    assert r.status == status, (path, header)


# -- Avalon ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["workmode", "worklevel"])
async def test_avalon_sends_the_level_command_the_site_names(command: str) -> None:
    async with rig("avalon") as rg:
        assert isinstance(rg.emulator, AvalonEmulator)
        rg.emulator.level_command = command
        drv = build_drivers(site([miner_entry("m1", "avalon", {
            "api": "avalon", "host": "127.0.0.1", "port": rg.emulator.port,
            "level_command": command, "timeout_s": 0.6})]))["m1"]
        try:
            res = await drv.set_power(140)
        finally:
            await drv.close()
        assert res.action == "sent" and res.confirmed_w == 140, res
        sets = [r["parameter"] for r in rg.emulator.seen if r.get("command") == "ascset"]
        assert sets == [f"0,{command},set,2"]


async def test_avalon_tries_the_other_level_command_once_when_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    async with rig("avalon") as rg:
        assert isinstance(rg.emulator, AvalonEmulator)
        rg.emulator.level_command = "worklevel"  # this model's firmware takes worklevel
        with caplog.at_level(logging.WARNING):
            res = await rg.driver.set_power(140)
        assert res.action == "sent" and res.confirmed_w == 140, res
        sets = [r["parameter"] for r in rg.emulator.seen if r.get("command") == "ascset"]
        assert sets == ["0,workmode,set,2", "0,worklevel,set,2"]
        assert "level_command = \"worklevel\"" in caplog.text
        res = await rg.driver.set_power(70)  # remembered: no second probe
        sets = [r["parameter"] for r in rg.emulator.seen if r.get("command") == "ascset"]
        assert sets[-1] == "0,worklevel,set,0" and len(sets) == 3


async def test_avalon_softoff_carries_a_timestamp_and_the_reply_says_success() -> None:
    async with rig("avalon") as rg:
        res = await rg.driver.pause()
        assert res.action == "sent", res
        (off,) = [r["parameter"] for r in rg.emulator.seen if r.get("command") == "ascset"]
        assert off.startswith("0,softoff,1:") and off.split(":")[1].isdigit()
        assert rg.miner.paused



# -- AxeOS pause (ESP-Miner openapi.yaml: POST /api/system/pause, resume; miningPaused) -----


@pytest.mark.parametrize("has_pause", [True, False])
async def test_axeos_pauses_only_firmware_that_has_pause(has_pause: bool) -> None:
    from controller.miners.axeos import PowerCurve
    from controller.miners.base import State
    from hil.miners.axeos import AxeOsEmulator
    from hil.miners.core import EmulatedMiner

    cfg = site([miner_entry("b", "bitaxe", {})]).miners[0]  # the model only
    miner = EmulatedMiner(cfg)
    emu = await AxeOsEmulator(miner, PowerCurve.load("bitaxe-gamma"),
                              has_pause=has_pause).start()
    drv = build_drivers(site([miner_entry("b", "bitaxe", {
        "api": "axeos", "host": "127.0.0.1", "port": emu.port, "use_pause": True,
        "min_write_interval_s": 0, "timeout_s": 0.6})]))["b"]
    try:
        assert drv.caps.can_pause
        res = await drv.pause()
        posts = [r["path"] for r in emu.seen if r["method"] == "POST"]
        if has_pause:
            assert res.action == "sent", res
            assert posts == ["/api/system/pause"] and miner.paused
            assert (await drv.read()).state is State.PAUSED
            res = await drv.resume()
            assert res.action == "sent" and not miner.paused, res
        else:  # an older build: refused with the reason, nothing posted, still hashing
            assert res.action == "refused" and "miningPaused" in res.reason, res
            assert posts == [] and not miner.paused
    finally:
        await drv.close()
        await emu.stop()


# -- LuxOS (LuxOS API documentation; LuxorLabs/luxos-tooling api.json) ----------------------


async def test_luxos_writes_carry_the_session_id_first() -> None:
    async with rig("luxos") as rg:
        res = await rg.driver.set_power(1500)
        assert res.action == "sent" and res.confirmed_w == 1500, res
        await rg.driver.pause()
        writes = [(r["command"], r.get("parameter")) for r in rg.emulator.seen
                  if r["command"] in ("logon", "profileset", "curtail")]
        sid = rg.emulator.session  # type: ignore[attr-defined]
        assert writes == [("logon", None), ("profileset", f"{sid},1500W"),
                          ("curtail", f"{sid},sleep")]
