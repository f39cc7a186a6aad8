"""Dynamic prices and the day-ahead plan in `hearth run`, end to end: the service in its own
process against the emulated site (Modbus meter, Braiins OS and AxeOS miner APIs over real
sockets), a real Mosquitto and the HMI on a free port.

1. A prices file with negative import prices: the plan buys for the miners (its
   `plan_min_w` floor), published on MQTT `state/plan` and `GET /api/plan`; the miners draw
   more than the surplus.
2. `cmd/prices` with a dear series: answered ok, the feed takes it, the plan re-plans for
   "prices" and stops buying; the miners fall back to the surplus.
3. A bad `cmd/prices` is refused naming the row and field.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import brokerkit
import httpx
import mqtt_observer
import numpy as np
import pytest
import simkit
import tomli_w
from mqtt_observer import until

from hil.site import EmulatedSite

SITE = "demo-house"
BASE = f"hearth/{SITE}"
SURPLUS_W = 1000.0




@pytest.fixture
def broker(tmp_path: Path) -> Iterator[brokerkit.Broker]:
    with brokerkit.Broker(tmp_path, users={"hearth": "hearth-pw", "agg": "agg-pw"}) as b:
        yield b




def _series(start: datetime, n: int, imp: float, exp: float) -> list[dict[str, Any]]:
    return [{"time": (start + timedelta(minutes=15 * k)).isoformat(), "import_price": imp,
             "export_price": exp} for k in range(n)]


@pytest.mark.slow(20)
async def test_prices_file_and_cmd_prices_drive_the_plan(tmp_path: Path,
                                                         broker: brokerkit.Broker) -> None:
    d = simkit.site_dict()
    del d["battery"], d["tank"]
    for m in d["miners"]:
        m.update(heats_tank=False, min_on_s=5, min_off_s=5, restart_s=2, stop_s=0.5)
    d["miners"][0]["ramp_w_per_s"] = 200.0
    # A price decision of the per-tick rule may change at once (default: holds 15 min).
    d["control"].update(on_delay_s=1, off_delay_s=2, stale_timeout_s=5,
                        price_decision_min_hold_s=0)
    (tmp_path / "emu.toml").write_bytes(tomli_w.dumps(d).encode())
    trace = simkit.trace(np.full(240, SURPLUS_W + 300.0), 300.0, step_s=60.0,
                         start_s=1_745_000_000.0)
    site = EmulatedSite(tmp_path / "emu.toml", trace, speed=1.0, step_s=0.2)
    await site.start()

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15 + 60)
    rows = _series(start, 40, -0.05, -0.10)
    (tmp_path / "prices.csv").write_text("time,import_price,export_price\n" + "".join(
        f"{r['time']},{r['import_price']},{r['export_price']}\n" for r in rows))
    (tmp_path / "mqtt.pw").write_text("hearth-pw\n")
    hmi_port = brokerkit.free_port()
    cfg: dict[str, Any] = site.controller_site(tmp_path, tick_s=1.0, start_delay_max_s=0.0,
                                               hmi_port=hmi_port)
    cfg["devices"][0]["period_s"] = 0.25
    cfg["tariffs"] = {**cfg.get("tariffs", {}), "prices_file": "prices.csv"}
    cfg["plan"] = {"enabled": True, "horizon_h": 6}
    cfg["mqtt"] = {"host": broker.host, "port": broker.port, "username": "hearth",
                   "password_file": "mqtt.pw", "discovery": False, "telemetry_interval_s": 0.5,
                   "telemetry_refresh_s": 5, "state_expiry_s": 60}
    cfg_path = tmp_path / "site.toml"
    cfg_path.write_bytes(tomli_w.dumps(cfg).encode())
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run", "--config",
             str(cfg_path), "--no-ledger"], stdout=log, stderr=subprocess.STDOUT,
            cwd=simkit.ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    agg = mqtt_observer.Observer(broker, "agg", "agg-pw", "plan-test-agg")
    agg.c.subscribe([(f"{BASE}/state/plan", 1), (f"{BASE}/cmd/+/result", 1)])
    try:
        # -- 1. negative prices from the file: the plan buys for the miners ----------------
        def plan_doc() -> Any:
            return agg.get(f"{BASE}/state/plan")

        await until(lambda: (plan_doc() or {}).get("plan") is not None, 60, "state/plan")
        doc = plan_doc()
        slot0 = doc["plan"]["slots"][0]
        assert slot0["import_price"] == -0.05 and slot0["export_price"] == -0.1
        await until(lambda: ((plan_doc() or {}).get("plan_min_w") or 0) > 1000, 30,
                     "a buy floor in the plan")
        await until(lambda: sum(site.state.miner_w.values()) > SURPLUS_W + 200, 60,
                     "miners above the surplus (buying at a negative price)")
        assert site.state.grid_w > 100
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hmi_port}") as http:
            r = await http.get("/api/plan")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["plan"]["slots"][0]["import_price"] == -0.05
            assert float(body["plan"]["expected_value"]) != 0.0

            # -- 2. cmd/prices: a dear series replaces the file's ---------------------------
            dear = _series(start, 40, 0.90, 0.05)
            agg.c.publish(f"{BASE}/cmd/prices", json.dumps({"prices": dear, "id": "p1"}), qos=1)
            await until(lambda: (agg.get(f"{BASE}/cmd/prices/result") or {}).get("id") == "p1",
                         15, "answer to cmd/prices")
            ans = agg.get(f"{BASE}/cmd/prices/result")
            assert ans["ok"] is True and ans["applied"]["series"]["periods"] == 40
            await until(lambda: ((plan_doc() or {}).get("plan") or {}).get("slots", [{}])[0]
                         .get("import_price") == 0.9, 30, "a plan on the new prices")
            assert plan_doc()["reasons"].get("prices", 0) >= 1
            assert plan_doc()["plan_min_w"] is None  # no floor: the price rule decides
            await until(lambda: sum(site.state.miner_w.values()) < SURPLUS_W + 100, 60,
                         "miners back to the surplus")
            r = await http.get("/api/plan")
            assert r.json()["plan"]["slots"][0]["import_price"] == 0.9

        # -- 3. a bad series is refused, naming the row and field -----------------------------
        bad = _series(start, 2, 0.1, 0.1)
        bad[1]["time"] = "2026-01-01T00:00:00"  # no offset
        agg.c.publish(f"{BASE}/cmd/prices", json.dumps({"prices": bad, "id": "p2"}), qos=1)
        await until(lambda: (agg.get(f"{BASE}/cmd/prices/result") or {}).get("id") == "p2",
                     15, "refusal of a bad series")
        ans = agg.get(f"{BASE}/cmd/prices/result")
        assert ans["ok"] is False
        assert any("prices[1] time" in json.dumps(e) for e in ans["errors"]), ans
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        agg.close()
        await site.stop()
        print(log_path.read_text(errors="replace")[-3000:])
