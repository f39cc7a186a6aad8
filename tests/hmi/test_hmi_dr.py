"""Demand response on the wall page: the grid's requests (DR events in force and planned)
reach `GET /api/state` from the service's schedule (`service.dr`), on the demo site (a
real Service stepping the plant model) and in `hearth run`'s own assembly; the page says
them in plain words (headless Chromium, screenshot in out/screenshots/)."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hmi_browser_kit import (
    browser_available,
    free_port,
    make_driver,
    shot,
    viewport,
    wait_until,
)
from hmi_testkit import Live, live_demo

from controller.config.load import parse_site
from controller.runtime.assemble import build_service
from controller.runtime.dr import DrEvent, DrHook, DrSchedule, Kind
from hmi.runtime import HmiRuntime

HOUSE = Path(__file__).resolve().parents[2] / "hil" / "sites" / "house-10kwp.toml"
H = 3600.0


def _with_dr(live: Live) -> DrSchedule:
    """What `hearth run` has: a schedule on the demo's clock, its hook among the command
    hooks, the service keeping it and the HMI reading it (hmi/runtime.py does the same)."""
    site = live.site
    dr = DrSchedule(utc=lambda: site.clock.utc_s)
    site.service.dr = dr
    site.service.command_hooks.append(DrHook(dr))
    site.publisher.dr = site.service.dr
    return dr


def _event(live: Live, event_id: str, kind: Kind, power_w: float, start_in_s: float,
           end_in_s: float | None, source: str = "openadr") -> DrEvent:
    now = live.site.clock.utc_s
    return DrEvent(event_id, source, kind, power_w, now + start_in_s,
                   None if end_in_s is None else now + end_in_s, now)


def _local_hhmm(utc_s: float) -> str:
    from zoneinfo import ZoneInfo

    return f"{datetime.fromtimestamp(utc_s, ZoneInfo('Europe/Brussels')):%H:%M}"


async def test_state_shows_the_grid_requests_of_the_services_schedule(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=5, ledger=False) as live, live.client() as c:
        s = (await c.get("/api/state")).json()
        assert s["grid_requests"] == [] and s["dr_absorb_w"] is None  # no DR: nothing extra
        dr = _with_dr(live)
        absorb = _event(live, "e-17", "absorb", 1200.0, -600, 1.5 * H)
        dr.put(absorb)
        dr.put(_event(live, "ev-8", "reduce", 800.0, 3 * H, 4 * H, "mqtt"))
        live.ticks(1)
        s = (await c.get("/api/state")).json()
        assert s["dr_absorb_w"] == 1200.0 and s["dr_cap_w"] is None
        got = s["grid_requests"]
        assert [(r["event_id"], r["kind"], r["source"], r["active"]) for r in got] == [
            ("e-17", "absorb", "openadr", True), ("ev-8", "reduce", "mqtt", False)]
        assert got[0]["power_w"] == 1200.0
        assert got[0]["start"] == absorb.as_json()["start"]
        assert got[0]["end"] == absorb.as_json()["end"]
        assert got[0]["detail"] == (
            "The grid operator asked the miners to take at least 1.2 kW until "
            f"{_local_hhmm(absorb.end_s or 0)} (OpenADR event e-17).")
        assert got[1]["detail"].startswith(
            "A grid-service request has asked the miners to stay under 800 W from ")
        # The cap's event starts: it is in force, and the absorption ended.
        dr.cancel("openadr", "e-17")
        live.site.clock.advance(3 * H)
        live.ticks(1)
        s = (await c.get("/api/state")).json()
        assert [(r["event_id"], r["active"]) for r in s["grid_requests"]] == [("ev-8", True)]
        assert s["dr_cap_w"] == 800.0 and s["dr_absorb_w"] is None
        # The OpenAPI document describes what the page now reads.
        spec = (await c.get("/api/openapi.json")).json()
        assert "GridRequest" in spec["components"]["schemas"]
        assert "grid_requests" in spec["components"]["schemas"]["StateOut"]["properties"]


async def test_hearth_run_keeps_the_schedule_where_the_hmi_reads_it(tmp_path: Path) -> None:
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    doc["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    doc["ledger"] = {"enabled": False}
    doc.pop("mqtt", None)
    cfg = parse_site(doc, str(HOUSE))
    service = build_service(cfg, str(HOUSE), ledger=False)
    assert isinstance(service.dr, DrSchedule)
    runtime = HmiRuntime(cfg)
    service.publishers.append(runtime.publisher)  # as controller/runtime/assemble.serve does
    await runtime.start(service, host="127.0.0.1", port=free_port())
    try:
        assert runtime.publisher.dr is service.dr
        now = datetime.now(UTC).timestamp()
        service.dr.put(DrEvent("e-5", "openadr", "reduce", 300.0, now - 60, now + H, now))
        service.tick()  # no device was started: a stale meter, but a tick all the same
        assert runtime.server is not None
        async with httpx.AsyncClient(base_url=runtime.server.url, timeout=20) as c:
            s = (await c.get("/api/state")).json()
        assert [r["event_id"] for r in s["grid_requests"]] == ["e-5"]
        assert s["dr_cap_w"] == 300.0
    finally:
        await runtime.stop()


# -- the wall page ------------------------------------------------------------------------

@pytest.fixture
def driver() -> Iterator[Any]:
    why = browser_available()
    if why is not None:
        pytest.skip(why)
    drv = make_driver()
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def _requests_text(driver: Any) -> str:
    boxes = driver.find_elements("css selector", "#requests")
    return str(boxes[0].text) if boxes and boxes[0].is_displayed() else ""


async def test_wall_page_says_what_the_grid_asked(tmp_path: Path, driver: Any) -> None:
    async with live_demo(tmp_path, ticks=5, ledger=False) as live:
        url = live.url

        def before() -> str:
            """Selenium blocks: it runs in a thread while the loop serves the page."""
            viewport(driver, 800, 480)
            driver.get(url + "/")
            wait_until(lambda: driver.execute_script(
                "return window.hearth.state && window.hearth.state.seq"), 20, "a state")
            return _requests_text(driver)

        assert await asyncio.to_thread(before) == ""  # no DR: no strip
        dr = _with_dr(live)
        # 06:05 UTC on the demo's day: an absorption until 18:30 in Brussels (16:30 UTC).
        day = datetime.fromtimestamp(live.site.clock.utc_s, UTC).replace(
            hour=16, minute=30, second=0, microsecond=0)
        end_in = day.timestamp() - live.site.clock.utc_s
        dr.put(_event(live, "e-17", "absorb", 1500.0, -300, end_in))
        dr.put(_event(live, "ev-8", "reduce", 800.0, end_in + H, end_in + 2 * H, "mqtt"))
        live.ticks(3)

        def after() -> dict[str, str]:
            seen: dict[str, str] = {}
            for w, h in ((800, 480), (1280, 800)):
                viewport(driver, w, h)
                if w != 800:
                    driver.get(url + "/")
                wait_until(lambda: "OpenADR event e-17" in _requests_text(driver), 20,
                           "the grid request on the page")  # 800x480: over the live feed
                seen[f"{w}x{h}"] = _requests_text(driver)
                shot(driver, f"wall-{w}x{h}-dr-absorb")
            seen["classes"] = driver.execute_script(
                "return [...document.querySelectorAll('#requests .request')]"
                ".map(e => e.className).join('|')")
            seen["errors"] = repr([e for e in driver.get_log("browser")
                                   if e["level"] == "SEVERE"])
            driver.get("about:blank")  # close the live feed before the server stops
            return seen

        seen = await asyncio.to_thread(after)
        await live.site.publisher.close()
    sentence = ("The grid operator asked the miners to take at least 1.5 kW until 18:30 "
                "(OpenADR event e-17).")
    # The small display: one line, what is in force, and how many more there are.
    assert seen["800x480"] == f"{sentence} (and 1 more)"
    big = seen["1280x800"]
    assert "Grid request: use more" in big and sentence in big
    assert "Planned grid request" in big and "from 19:30 to 20:30 (MQTT event ev-8)" in big
    assert seen["classes"] == "request req-absorb active|request req-reduce"
    assert seen["errors"] == "[]"
