"""Every state-changing endpoint, taken from the app's own OpenAPI document (so a new one
cannot be forgotten), refuses: no credentials (401), a browser session without a valid
CSRF token (403), a cross-origin request (403). The ways in (setup, login, PIN) are open
to anonymous callers by nature, but refuse a missing CSRF token as well."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hmi_testkit import installer_client, live_demo, post

ENTRY = {("POST", "/api/auth/setup"), ("POST", "/api/auth/login"), ("POST", "/api/auth/pin")}
UNSAFE = ("post", "put", "patch", "delete")
ENDS_SESSION = ("/api/auth/logout", "/api/auth/panel")


def _operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for path, ops in spec["paths"].items():
        for method in ops:
            if method in UNSAFE:
                # a concrete path: {name} -> a miner of the demo site
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "s9", path)))
    # The two that end the installer session go last.
    return sorted(out, key=lambda op: op[1] in ENDS_SESSION)


@pytest.mark.slow
async def test_every_state_change_needs_credentials_and_csrf(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=2) as live:
        async with live.client() as anon:
            spec = (await anon.get("/api/openapi.json")).json()
            ops = _operations(spec)
            assert len(ops) >= 15, ops  # the list is real, not empty
            token = (await anon.get("/api/auth/session")).json()["csrf_token"]
            for method, path in ops:
                # Not logged in (even with a valid anonymous CSRF token, even with a body).
                r = await anon.request(method, path, json={},
                                       headers={"X-CSRF-Token": token})
                if (method, path) in ENTRY:
                    assert r.status_code not in (401, 403), (method, path, r.text)
                else:
                    assert r.status_code == 401, (method, path, r.status_code, r.text)
                # A malformed body does not get past the door either.
                r = await anon.request(method, path, content=b"{",
                                       headers={"Content-Type": "application/json"})
                assert r.status_code in (401, 403), (method, path, r.status_code)
                if (method, path) in ENTRY:
                    assert r.status_code == 403

        before = live.site.service.overrides
        async with installer_client(live) as inst:
            good = (await inst.get("/api/auth/session")).json()["csrf_token"]
            checked = 0
            for method, path in ops:
                for headers in ({}, {"X-CSRF-Token": "forged"},
                                {"X-CSRF-Token": good, "Origin": "http://evil.example"},
                                {"X-CSRF-Token": good, "Sec-Fetch-Site": "cross-site"}):
                    r = await inst.request(method, path, json={}, headers=headers)
                    assert r.status_code == 403, (method, path, headers, r.status_code)
                # With the token the request gets through the door (and may be invalid).
                if path in ENDS_SESSION:
                    continue  # would end this session: checked in test_hmi_auth
                r = await inst.request(method, path, json={}, headers={"X-CSRF-Token": good})
                assert r.status_code not in (401, 403), (method, path, r.text)
                checked += 1
            assert checked == len(ops) - len(ENDS_SESSION)
        # Nothing the refused requests carried was applied.
        assert live.site.service.overrides == before


async def test_an_anonymous_csrf_token_does_not_fit_a_session(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live:
        async with live.client() as other:
            foreign = (await other.get("/api/auth/session")).json()["csrf_token"]
        async with installer_client(live) as inst:
            r = await inst.post("/api/commands/pause", json={"paused": True},
                                headers={"X-CSRF-Token": foreign})
            assert r.status_code == 403
            r = await post(inst, "/api/commands/pause", {"paused": True})
            assert r.status_code == 200


async def test_same_origin_requests_pass(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, installer_client(live) as inst:
        host = httpx.URL(live.url).netloc.decode()
        token = (await inst.get("/api/auth/session")).json()["csrf_token"]
        r = await inst.post("/api/commands/pause", json={"paused": False},
                            headers={"X-CSRF-Token": token, "Origin": f"http://{host}",
                                     "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200, r.text
