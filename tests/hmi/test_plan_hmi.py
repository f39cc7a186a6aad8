"""`GET /api/plan`: the HMI's view of the runtime planner, on the demo site (a real Service
stepping the plant model) served over HTTP."""

from __future__ import annotations

from pathlib import Path

from hmi_testkit import live_demo, wait_for

from controller.runtime.planner import RuntimePlanner


async def test_plan_endpoint_off_then_on(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=5, ledger=False) as live, live.client() as c:
        r = await c.get("/api/plan")
        assert r.status_code == 200 and r.json() == {"enabled": False, "plan": None}
        service = live.site.service
        planner = RuntimePlanner(service.cfg, service.prices)
        service.planner = planner
        service.publishers.append(planner)
        service.command_hooks.append(planner)
        try:
            live.ticks(3)
            await wait_for(lambda: planner.as_json()["plan"] is not None, 20, "a plan")
            doc = (await c.get("/api/plan")).json()
            assert doc["enabled"] is True and doc["replans"] >= 1
            slots = doc["plan"]["slots"]
            assert len(slots) >= 4 and doc["plan"]["step_s"] == 900
            # The demo site has no price file: the constant [tariffs] prices are planned on.
            assert {s["import_price"] for s in slots} == {float(service.cfg.tariffs
                                                              .import_price_per_kwh)}
            assert all(s["tank_c"] is not None for s in slots)
            assert doc["tank_target_c"] >= service.cfg.tank.target_c  # type: ignore[union-attr]
            # The next tick carries the plan's overrides, and the wall page shows its target.
            live.ticks(1)
            last = service.last
            assert last is not None and last.overrides.plan_tank_target_c is not None
            assert abs(last.overrides.plan_tank_target_c - doc["tank_target_c"]) < 0.01
            shown = (await c.get("/api/state")).json()["tank"]
            assert abs(shown["target_c"] - doc["tank_target_c"]) < 0.01
            assert shown["target_overridden"] is False
        finally:
            await planner.close()
