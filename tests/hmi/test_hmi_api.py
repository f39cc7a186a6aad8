"""The JSON API and the live feed, against the real app served by uvicorn on loopback, with
the real service, controller, plant model and ledger behind it (the demo site)."""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import simkit
from hmi_testkit import PIN, Live, installer_client, live_demo, post

from controller.ledger.query import Ledger


async def _events(client: httpx.AsyncClient, n: int, kinds: tuple[str, ...] = ("state",)
                  ) -> list[tuple[str, Any]]:
    """The first `n` events of the given kinds from /api/events."""
    out: list[tuple[str, Any]] = []
    async with client.stream("GET", "/api/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in kinds:
                out.append((event, json.loads(line[6:])))
                if len(out) >= n:
                    return out
    return out


async def test_state_shows_the_tick_in_plain_words(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=240) as live, live.client() as c:  # 10:00 UTC
        s = (await c.get("/api/state")).json()
        assert s["available"] and s["seq"] == 240
        assert s["site_name"] == "Demo house, 10 kWp" and s["timezone"] == "Europe/Brussels"
        last = live.site.service.last
        assert last is not None
        f = s["flows"]
        m = last.measurements
        assert m.grid_power_w is not None and m.pv_power_w is not None
        assert f["grid_w"] == m.grid_power_w.value and f["pv_w"] == m.pv_power_w.value
        miners_w = sum(r.power_w for r in m.miners.values())
        assert f["miners_w"] == miners_w > 0  # a spring morning: the miners run on surplus
        # the house load closes the balance at the meter
        assert m.battery_power_w is not None
        assert abs(f["load_w"] - (f["pv_w"] + f["grid_w"] - f["battery_w"] - miners_w)) < 1e-6
        assert s["tank"]["min_c"] == 40 and s["tank"]["max_c"] == 70
        names = [x["name"] for x in s["miners"]]
        assert names == ["s9", "bitaxe-1", "bitaxe-2"]
        s9 = s["miners"][0]
        assert s9["state"] == "mining" and s9["hashrate_ths"] > 5
        assert s["status"]
        assert (await c.get("/api/miners")).json() == s["miners"]
        # The bitcoin terms in force: the demo's feed is off, so the site file's.
        b = s["bitcoin"]
        assert b["source"] == "config" and b["stale"] is False and b["as_of"] is None
        assert b["btc_price"] == str(live.site.cfg.bitcoin.btc_price)
        assert b["words"] == "Fixed price: no live one yet."


async def test_live_feed_pushes_every_tick(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=3) as live, live.client() as c:
        task = asyncio.create_task(_events(c, 4))
        # The first message is the current state; then one per tick.
        while live.ctx.publisher.subscribers == 0:
            await asyncio.sleep(0.01)
        live.ticks(3)
        got = await asyncio.wait_for(task, 10)
        seqs = [d["seq"] for _, d in got]
        assert seqs == [3, 4, 5, 6]
        assert got[-1][1]["at"] > got[0][1]["at"]  # the clock advances a trace step a tick


async def test_live_feed_ends_when_the_service_stops(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        async with c.stream("GET", "/api/events") as r:
            lines = r.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            await live.ctx.publisher.close()  # what Service.shutdown() does
            rest = [line async for line in lines]
        assert any(x.startswith("data: ") for x in rest)  # the hello + state, then the end
        assert live.ctx.publisher.subscribers == 0


async def test_history_averages_steps_and_keeps_24_hours(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=0, ledger=False) as live, live.client() as c:
        live.ticks(30)
        h = (await c.get("/api/history", params={"hours": 24})).json()
        assert h["step_s"] == 60
        # one point per closed 60 s step; the step in progress is not shown yet
        assert len(h["points"]) == 29
        ts = [p["t"] for p in h["points"]]
        assert ts == sorted(ts) and all(b - a == 60 for a, b in itertools.pairwise(ts))
        assert all(p["import_price"] == 0.32 for p in h["points"])
        short = (await c.get("/api/history", params={"hours": 0.25})).json()
        assert len(short["points"]) == 15
        bad = await c.get("/api/history", params={"hours": 48})
        assert bad.status_code == 422
        assert bad.json()["problems"][0]["where"] == "hours"  # the field, as for dates


async def test_revenue_comes_from_the_ledger(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=400) as live, live.client() as c:
        assert live.site.writer is not None
        live.site.writer.flush()
        r = (await c.get("/api/revenue")).json()
        assert r["available"] and r["currency"] == "EUR"
        # The same numbers as the ledger's own query API (what the CLI prints).
        now = live.ctx.now_s()
        lg = Ledger.open(live.site.cfg.ledger.url)
        try:
            snap = lg.snapshot(now)
        finally:
            lg.close()
        today = r["today"]
        assert today["sats"] == snap["today"]["sats"] > 0
        assert Decimal(today["net"]) == Decimal(snap["today"]["net"])
        assert Decimal(today["btc_value"]) + Decimal(today["heat_value"]) - \
            Decimal(today["power_cost"]) == Decimal(today["net"])
        assert today["power_cost"] == snap["today"]["power_cost"]
        assert Decimal(today["heat_value"]) > 0


async def test_revenue_reconciles_pool_payouts_per_month(tmp_path: Path) -> None:
    """The money view's pool table: the ledger's reconciliation of this month and the two
    before, shown only once payouts were imported."""
    from controller.economics.payouts import Payout

    async with live_demo(tmp_path, ticks=400) as live, live.client() as c:
        assert live.site.writer is not None
        live.site.writer.flush()
        r = (await c.get("/api/revenue")).json()
        assert r["pool"] == []  # nothing imported: nothing to reconcile
        now = int(live.ctx.now_s())
        lg = Ledger.open(live.site.cfg.ledger.url)
        try:
            lg.import_payouts([Payout(now, 21, "demo-1", now - 86_400, now - 3600)])
            expected = lg.reconciliation(2025, 4, 3)
        finally:
            lg.close()
        live.ctx.ledger._cache = None  # type: ignore[attr-defined]  # the 5-s cache
        r = (await c.get("/api/revenue")).json()
        assert r["pool"] == [m.as_json() for m in expected]
        april = r["pool"][-1]
        assert april["month"] == "2025-04" and april["paid_sats"] == 21
        assert april["payouts"] == 1 and april["expected_sats"] > 0
        assert april["difference_sats"] == 21 - april["expected_sats"]


async def test_revenue_without_a_ledger_says_so(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=2, ledger=False) as live, live.client() as c:
        r = (await c.get("/api/revenue")).json()
        assert r == {"available": False, "reason": "the ledger is switched off for this site",
                     "currency": "EUR", "today": None, "month": None, "pool": []}
        day = await c.get("/api/ledger/day", params={"date": "2025-04-21"})
        assert day.status_code == 503
        assert "switched off" in day.json()["error"]
        assert live.ctx.publisher.state.available


async def test_ledger_reports_and_bad_dates(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=300) as live, live.client() as c:
        assert live.site.writer is not None
        live.site.writer.flush()
        day = (await c.get("/api/ledger/day", params={"date": "2025-04-21"})).json()
        assert day["kind"] == "day" and day["rows"]
        month = (await c.get("/api/ledger/month", params={"month": "2025-04"})).json()
        assert month["total"]["sats"] == day["total"]["sats"]
        bad = await c.get("/api/ledger/day", params={"date": "21.4.2025"})
        assert bad.status_code == 422
        (problem,) = bad.json()["problems"]  # typed as a date in the schema (issue 17)
        assert problem["where"] == "date" and "valid date" in problem["reason"]


async def _resident(live: Live, c: httpx.AsyncClient) -> None:
    async with installer_client(live) as inst:
        assert (await post(inst, "/api/auth/pin", {"pin": PIN}, "PUT")).status_code == 200
    r = await post(c, "/api/auth/pin", {"pin": PIN})
    assert r.status_code == 200 and r.json()["role"] == "resident"


async def test_a_mode_change_reaches_the_controller(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=3) as live, live.client() as c:
        await _resident(live, c)
        r = await post(c, "/api/commands/mode", {"mode": "heating"})
        assert r.status_code == 200, r.text
        assert r.json()["overrides"]["mode"] == "heating"
        assert live.site.service.overrides.mode is not None
        live.ticks(1)
        assert live.site.service.last is not None
        assert live.site.service.last.commands.mode == "heating"  # the control core saw it
        s = (await c.get("/api/state")).json()
        assert s["mode"] == "heating" and s["configured_mode"] == "grid"


async def test_pause_and_resume_hold_the_miners(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=240) as live, live.client() as c:
        await _resident(live, c)
        assert (await post(c, "/api/commands/pause", {"paused": True})).status_code == 200
        live.ticks(1)
        s = (await c.get("/api/state")).json()
        assert s["paused"]
        # Every miner that can pause is off; the Bitaxes (AxeOS, no pause) stay at their
        # minimum: all their firmware can do.
        assert s["total_target_w"] == simkit.held_w(live.site.cfg)
        assert any(a["code"] == "hold" and a["title"] == "Miners paused" for a in s["alarms"])
        assert (await post(c, "/api/commands/pause", {"paused": False})).status_code == 200
        live.ticks(1)
        assert not (await c.get("/api/state")).json()["paused"]


async def test_bad_commands_name_the_field_and_change_nothing(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=3) as live, live.client() as c:
        await _resident(live, c)
        before = live.site.service.overrides
        cases = [
            ("/api/commands/mode", {"mode": "island"}, "mode", "not switched at run time"),
            ("/api/commands/mode", {"mode": "turbo"}, "mode", "unknown mode"),
            ("/api/commands/mode", {"mode": 3}, "mode", "valid string"),
            ("/api/commands/mode", {"mode": "grid", "x": 1}, "x", "unknown field"),
            ("/api/commands/tank-target", {"target_c": 80}, "target_c", "below its max"),
            ("/api/commands/tank-target", {"target_c": "55"}, "target_c", "valid number"),
            ("/api/commands/pause", {}, "paused", "required"),
        ]
        for path, body, where, words in cases:
            r = await post(c, path, body)
            assert r.status_code == 422, (path, body, r.text)
            problems = r.json()["problems"]
            assert problems and problems[0]["where"] == where, (body, problems)
            assert words in problems[0]["reason"], (body, problems)
        assert live.site.service.overrides == before
        # malformed JSON is refused the same way
        r = await c.post("/api/commands/mode", content=b"{nope",
                         headers={"X-CSRF-Token": (await c.get("/api/auth/session")).json()[
                             "csrf_token"], "Content-Type": "application/json"})
        assert r.status_code == 422


async def test_installer_commands_need_the_installer(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=3) as live, live.client() as c:
        await _resident(live, c)
        r = await post(c, "/api/commands/dr-cap", {"cap_w": 500})
        assert r.status_code == 403
        async with installer_client(live) as inst:
            r = await post(inst, "/api/commands/dr-cap", {"cap_w": 500, "duration_s": 3600})
            assert r.status_code == 200
            assert r.json()["overrides"]["dr_cap_w"] == 500
            assert r.json()["overrides"]["dr_cap_until"] is not None
            r = await post(inst, "/api/commands/miner-power", {"miner": "s9", "power_w": 650})
            assert r.status_code == 200
            r = await post(inst, "/api/commands/miner-power", {"miner": "bitaxe-1",
                                                                "power_w": 5})
            assert r.status_code == 422
            assert "within 9..22 W" in r.json()["problems"][0]["reason"]
        live.ticks(2)
        o = live.site.service.overrides
        assert o.dr_cap_w == 500 and dict(o.manual_w) == {"s9": 650.0}
        s = (await c.get("/api/state")).json()
        assert s["dr_cap_w"] == 500
        assert s["miners"][0]["manual_w"] == 650


async def test_pages_and_assets_are_served_locally(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        for path in ("/", "/installer", "/api/docs"):
            r = await c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in r.headers["content-security-policy"]
            # every asset the page names is served by the app itself
            for ref in _refs(r.text):
                assert ref.startswith("/static/"), ref
                a = await c.get(ref)
                assert a.status_code == 200, ref
        spec = (await c.get("/api/openapi.json")).json()
        assert spec["info"]["title"] == "Hearth HMI"
        assert "/api/commands/mode" in spec["paths"]
        assert (await c.get("/api/state")).headers["cache-control"] == "no-store"
        assert live.ctx.publisher.state.available


def _refs(html: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="(/[^"]*\.(?:js|css|svg))"', html)


async def test_the_demo_survives_a_thousand_ticks_a_day_rolls_over(tmp_path: Path) -> None:
    """From 06:00 into the next day: the trace wraps, the ledger keeps accounting."""
    async with live_demo(tmp_path, ticks=0, start_utc="20:00") as live, live.client() as c:
        live.ticks(300)
        s = (await c.get("/api/state")).json()
        assert s["at"].startswith("2025-04-22T00:5")
        r = (await c.get("/api/revenue")).json()
        assert r["available"]
