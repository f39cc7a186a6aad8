"""The fleet page: its API over a real PostgreSQL, and the page rendered by Debian's
headless Chromium from the files it serves itself."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import uvicorn
from brokerkit import free_port
from fastapi.testclient import TestClient
from fleetkit import interval_row, wait

from controller.fleet import store
from controller.fleet.page import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def fill(url: str) -> Any:
    eng = store.make_fleet_engine(url)
    store.ensure_schema(eng)
    now = time.time()
    day0 = int(now) // 86400 * 86400
    parts = store.Partitions()
    rows = []
    for site in ("alpha", "beta"):
        for i in range(4):
            r = interval_row(day0 + 900 * i)
            r.update(site_id=site, ingested_at_s=int(now))
            rows.append(r)
    info = {"import_limit_w": 11000, "hmi_url": "http://alpha.local:8080/",
            "miners": {"s9": {"min_power_w": 300, "max_power_w": 1400}}}
    with eng.begin() as conn:
        store.insert_rows(conn, store.fleet_interval, rows, parts)
        store.upsert_sites(conn, [
            store.SiteUpdate("alpha", info=info, availability="online", bridge="1",
                             last_seen_s=now, state={
                                 "power": {"grid_power_w": -500, "pv_power_w": 3000,
                                           "miner_power_w": 900, "_at_s": now},
                                 "miners/s9": {"power_w": 900, "state": "running"},
                                 "control": {"trips": ["tank_max"], "dr_cap_w": None},
                                 "today": {"currency": "EUR", "btc_value": "1.2345",
                                           "heat_value": "0.5", "power_cost": "0.3",
                                           "net": "1.4345", "sats": 120}}),
            store.SiteUpdate("beta", availability="offline", last_seen_s=now - 600,
                             state={"power": {"miner_power_w": 1400, "_at_s": now - 600}}),
        ])
        store.record_refused(conn, [{"at_s": now, "site_id": "beta", "topic":
                                     "hearth/beta/ledger/interval", "field": "net",
                                     "reason": "must be a decimal string", "payload": "{}"}])
    return eng


def test_fleet_api_sites_money_and_alarms(pg_url: str) -> None:
    eng = fill(pg_url)
    client = TestClient(create_app(eng))
    r = client.get("/api/sites")
    assert r.status_code == 200
    assert "default-src 'self'" in r.headers["content-security-policy"]
    sites = {s["site_id"]: s for s in r.json()["sites"]}
    a, b = sites["alpha"], sites["beta"]
    assert a["online"] is True and b["online"] is False
    assert a["flex_shed_w"] == 900 and a["flex_add_w"] == 500   # 1400 max - 900 running
    assert b["flex_shed_w"] == 0                                 # offline: nothing to offer
    assert a["alarms"] == ["safety trips: tank_max"]
    assert b["alarms"] == ["the site's controller is offline", "1 refused message(s)"]
    assert a["hmi_url"] == "http://alpha.local:8080/"
    assert r.json()["total"]["flex_shed_w"] == 900
    money = client.get("/api/money?days=2").json()["days"]
    assert [(d["site_id"], d["intervals"]) for d in money] == [("alpha", 4), ("beta", 4)]
    assert Decimal(money[0]["net"]) == Decimal("0.012345") * 4
    assert money[0]["expected_sats"] == 6843 * 4 // 1000
    assert client.get("/api/money?days=0").status_code == 422
    page = client.get("/")
    assert page.status_code == 200 and "/static/fleet.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")   # nothing from a CDN
    assert client.get("/static/fleet.js").status_code == 200
    eng.dispose()


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")
def test_fleet_page_renders_in_headless_chromium(pg_url: str) -> None:
    eng = fill(pg_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(eng), host="127.0.0.1", port=port,
                                           log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        wait(lambda: server.started, 10, "the page's server")
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--virtual-time-budget=8000", "--dump-dom",
             f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=90)
        dom = out.stdout
        assert 'data-site="alpha"' in dom and 'data-site="beta"' in dom, out.stderr[-2000:]
        assert "1 of 2 sites online" in dom
        assert 'href="http://alpha.local:8080/"' in dom
        assert "safety trips: tank_max" in dom
    finally:
        server.should_exit = True
        t.join(10)
        eng.dispose()
