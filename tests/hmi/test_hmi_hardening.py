"""Hardening (issue 17) of the HMI over a real socket: what an adversarial probe found open.
Each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hmi_testkit import csrf, installer_client, live_demo, post

from hmi.auth import LoginLimiter

# -- item 1: the HMI's validate and save run the one site validation ----------------------

async def test_config_validate_refuses_driver_settings_the_service_cannot_start_with(
        tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, installer_client(live) as c:
        got = (await c.get("/api/config")).json()
        doc, path = got["config"], Path(got["path"])
        before = path.read_text()
        miners = [dict(m) for m in doc["miners"]]
        miners[0]["driver"] = {"api": "whatsminer-9000", "host": "192.0.2.10"}
        miners[1]["driver"] = {**miners[1]["driver"], "port": "abc"}
        for method, url in (("POST", "/api/config/validate"), ("PUT", "/api/config")):
            r = await post(c, url, {"config": {**doc, "miners": miners}}, method)
            assert r.status_code == 422, r.text
            where = {p["where"] for p in r.json()["problems"]}
            assert {"miners[0].driver.api", "miners[1].driver.port"} <= where, r.text
        assert path.read_text() == before


# -- item 3: logins are throttled per client with back-off, never locked for everyone -----

def test_failures_from_many_addresses_do_not_lock_out_a_new_client() -> None:
    t = [0.0]
    lim = LoginLimiter(per_client=5, total=20, window_s=900, clock=lambda: t[0])
    for i in range(40):  # the probe: 20+ failures in total, from many addresses
        lim.failed(f"10.0.0.{i}")
    # A correct setup code from a new address is checked, not refused with 429.
    assert lim.retry_after("10.0.1.1") is None
    # Under that pressure an address that already failed waits (bounds guessing a PIN
    # from many addresses), but only for the window, never forever.
    assert lim.retry_after("10.0.0.3") == pytest.approx(900)
    t[0] = 901
    assert lim.retry_after("10.0.0.3") is None


def test_one_client_backs_off_exponentially_and_others_are_not_affected() -> None:
    t = [0.0]
    lim = LoginLimiter(per_client=3, total=1000, window_s=600, clock=lambda: t[0],
                       backoff_base_s=2.0)
    waits = []
    for _ in range(10):
        w = lim.retry_after("a")
        if w is not None:
            waits.append(round(w))
            t[0] += w
        lim.failed("a")
    assert waits == [2, 4, 8, 16, 32, 64, 128]  # free tries, then doubling
    for _ in range(5):
        t[0] += lim.retry_after("a") or 0
        lim.failed("a")
    assert lim.retry_after("a") == pytest.approx(600)  # capped at the window
    assert lim.retry_after("b") is None  # someone else is not held by a's failures
    lim.succeeded("a")
    assert lim.retry_after("a") is None


# -- item 10: error shapes, HEAD, TRACE, schema-true query values, a request size cap -----

def _shape(r: httpx.Response) -> None:
    body = r.json()
    assert set(body) == {"error", "problems"}, body
    assert isinstance(body["problems"], list)


async def test_bad_json_bodies_get_the_documented_error_shape(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        token = await csrf(c)
        h = {"X-CSRF-Token": token, "Content-Type": "application/json"}
        for body in (b'{"password": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000,
                     b"{not json"):
            r = await c.post("/api/auth/login", content=body, headers=h)
            assert 400 <= r.status_code < 500, r.text
            _shape(r)


async def test_head_trace_and_unknown_methods(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        r = await c.head("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        r = await c.request("TRACE", "/api/health")
        assert r.status_code == 405, r.text
        _shape(r)
        r = await c.request("PATCH", "/api/health")
        assert r.status_code in (401, 405)
        _shape(r)


async def test_query_values_are_typed_in_the_schema(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        spec = (await c.get("/api/openapi.json")).json()
        day = spec["paths"]["/api/ledger/day"]["get"]["parameters"]
        assert any(p["name"] == "date" and p["schema"].get("format") == "date" for p in day)
        month = spec["paths"]["/api/ledger/month"]["get"]["parameters"]
        assert any(p["name"] == "month" and "pattern" in p["schema"] for p in month)
        r = await c.get("/api/ledger/day", params={"date": "not-a-day"})
        assert r.status_code == 422
        _shape(r)
        r = await c.get("/api/ledger/day", params={"date": "9999-12-31"})
        assert r.status_code < 500, r.text


async def test_request_bodies_are_capped(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, installer_client(live) as c:
        token = await csrf(c)
        big = b'{"config": {"x": "' + b"a" * (30 << 20) + b'"}}'
        r = await c.post("/api/config/validate", content=big,
                         headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
        assert r.status_code == 413, r.text[:300]
        _shape(r)
