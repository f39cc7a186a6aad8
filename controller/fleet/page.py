"""`hearth fleet serve`: the fleet page (FastAPI), the HMI's conventions: a JSON API, a
static page and script it serves itself (no CDN), security headers, read-only.

    app = create_app(engine)       # engine: the fleet's PostgreSQL (store.py)

- `GET /api/sites`: per site online, power now, flexibility now (W it could shed or add
  within ~1 s), today's money, alarms, its wall-page link; and the fleet's totals;
- `GET /api/money?days=7`: money by leg per site and UTC day (ingested ledger intervals);
- `GET /api/dr`: the fleet DR requests, requested vs delivered (measured), per site;
- `GET /api/refused`: the latest refused messages (site, topic, field, reason).

The page is read-only and shows every site: serve it on loopback (the default) or behind
the operator's authenticating reverse proxy (docs/fleet.md).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from controller.fleet import store
from controller.fleet.view import SiteView
from hmi.security import SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def site_view(row: dict[str, Any]) -> SiteView:
    state = row.get("state") or {}
    power = dict(state.get("power") or {})
    at = power.pop("_at_s", None)
    return SiteView(
        site_id=row["site_id"], power=power,
        power_at_s=float(at) if isinstance(at, (int, float)) else None,
        miners={k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("miners/")},
        control=state.get("control") or {}, info=row.get("info") or {},
        availability=row.get("availability"), bridge=row.get("bridge"))


def site_summary(row: dict[str, Any], now_s: float, stale_s: float,
                 refused: int) -> dict[str, Any]:
    v = site_view(row)
    online = v.reachable(now_s, stale_s)
    alarms: list[str] = []
    if v.availability == "offline":
        alarms.append("the site's controller is offline")
    elif v.bridge == "0":
        alarms.append("the site's link to the fleet is down")
    elif not online:
        alarms.append("no fresh telemetry")
    trips = v.control.get("trips") or []
    if trips:
        alarms.append("safety trips: " + ", ".join(str(t) for t in trips))
    if refused:
        alarms.append(f"{refused} refused message(s)")
    today = (row.get("state") or {}).get("today") or {}
    p = v.power
    return {
        "site_id": v.site_id, "online": online,
        "last_seen_s": row.get("last_seen_s"),
        "grid_power_w": p.get("grid_power_w"), "pv_power_w": p.get("pv_power_w"),
        "miner_power_w": p.get("miner_power_w"), "house_power_w": p.get("house_power_w"),
        "flex_shed_w": round(v.shed_w(now_s, stale_s)),
        "flex_add_w": round(v.add_w(now_s, stale_s)),
        "dr_cap_w": v.control.get("dr_cap_w"), "mode": v.control.get("mode"),
        # The site's state/today (docs/mqtt.md): net = btc_value + heat_value - power_cost.
        # A site from before that vocabulary sends only `revenue` (its BTC + heat value).
        "today": {k: today.get(k) for k in ("currency", "btc_value", "heat_value",
                                            "power_cost", "net", "sats", "revenue")}
        if today else None,
        "alarms": alarms, "hmi_url": v.info.get("hmi_url"),
    }


def create_app(engine: Engine, stale_s: float = 120.0) -> FastAPI:
    app = FastAPI(title="Hearth fleet", version="1", docs_url=None, redoc_url=None)

    def _sites() -> dict[str, Any]:
        now = time.time()
        with engine.connect() as conn:
            rows = store.sites(conn)
            refused = store.recent_refused(conn, 500)
        by_site: dict[str, int] = {}
        for r in refused:
            if r["site_id"] and now - r["at_s"] < 86400:
                by_site[r["site_id"]] = by_site.get(r["site_id"], 0) + 1
        sites = [site_summary(r, now, stale_s, by_site.get(r["site_id"], 0)) for r in rows]
        total = {k: round(sum(float(s[k] or 0) for s in sites))
                 for k in ("miner_power_w", "flex_shed_w", "flex_add_w")}
        return {"now_s": now, "sites": sites, "online": sum(s["online"] for s in sites),
                "total": total}

    @app.get("/api/sites")
    async def api_sites() -> dict[str, Any]:
        return await asyncio.to_thread(_sites)

    @app.get("/api/money")
    async def api_money(days: int = Query(7, ge=1, le=366)) -> dict[str, Any]:
        end = (int(time.time()) // 86400 + 1) * 86400
        start = end - days * 86400

        def q() -> list[dict[str, Any]]:
            with engine.connect() as conn:
                return store.money_by_day(conn, start, end)
        return {"days": await asyncio.to_thread(q)}

    @app.get("/api/dr")
    async def api_dr() -> dict[str, Any]:
        def q() -> list[dict[str, Any]]:
            with engine.connect() as conn:
                return store.dr_events(conn)
        return {"events": await asyncio.to_thread(q)}

    @app.get("/api/refused")
    async def api_refused() -> dict[str, Any]:
        def q() -> list[dict[str, Any]]:
            with engine.connect() as conn:
                return store.recent_refused(conn)
        return {"refused": await asyncio.to_thread(q)}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "fleet.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # The HMI's headers for a read-only page: CSP self only, no forms at all.
    app.add_middleware(SecurityHeaders, csp=CSP)
    return app
