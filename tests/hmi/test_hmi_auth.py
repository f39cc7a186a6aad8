"""Logins: no default password, the one-time setup code, argon2 hashes on disk, sessions
(HttpOnly + SameSite=Strict cookies), rate-limited logins, the resident PIN, API tokens."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import httpx
import pytest
from hmi_testkit import PASSWORD, PIN, installer_client, live_demo, post

from controller.errors import InputError
from hmi.auth import AuthStore, LoginLimiter


def _cookie_attrs(r: httpx.Response, name: str) -> str:
    for h in r.headers.get_list("set-cookie"):
        if h.startswith(f"{name}="):
            return h.lower()
    raise AssertionError(f"no {name} cookie in {r.headers.get_list('set-cookie')}")


async def test_first_start_needs_the_setup_code_from_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hmi.auth")
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        logged = [r.getMessage() for r in caplog.records if "setup code" in r.getMessage()]
        assert len(logged) == 1
        code = live.ctx.auth.setup_code
        assert code is not None and code in logged[0]
        s = (await c.get("/api/auth/session")).json()
        assert s["setup_required"] and s["role"] == "none"
        # No default password: nothing logs in before the setup.
        for pw in ("", "admin", "hearth", PASSWORD):
            r = await post(c, "/api/auth/login", {"password": pw})
            assert r.status_code == 409, r.text
        r = await post(c, "/api/auth/setup", {"setup_code": "AAAAA-BBBBB", "password": PASSWORD})
        assert r.status_code == 401 and "setup code" in r.json()["error"]
        r = await post(c, "/api/auth/setup", {"setup_code": code, "password": "short"})
        assert r.status_code == 422
        assert r.json()["problems"] == [{"where": "password",
                                         "reason": "must be at least 10 characters"}]
        # the code is accepted however it is typed
        r = await post(c, "/api/auth/setup", {"setup_code": code.lower().replace("-", " "),
                                               "password": PASSWORD})
        assert r.status_code == 200 and r.json()["role"] == "installer"
        sid = _cookie_attrs(r, "hearth_sid")
        assert "httponly" in sid and "samesite=strict" in sid and "path=/" in sid
        assert "samesite=strict" in _cookie_attrs(r, "hearth_csrf")
        assert live.ctx.auth.setup_code is None  # one time only
        r = await post(c, "/api/auth/setup", {"setup_code": code, "password": PASSWORD})
        assert r.status_code in (401, 422)
        doc = json.loads((tmp_path / "hmi-auth.json").read_text())
        assert doc["password_argon2"].startswith("$argon2id$")
        assert PASSWORD not in (tmp_path / "hmi-auth.json").read_text()
        mode = stat.S_IMODE((tmp_path / "hmi-auth.json").stat().st_mode)
        assert mode == 0o600


async def test_login_is_rate_limited_per_client(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    async with live_demo(tmp_path, ticks=1) as live:
        async with installer_client(live):
            pass
        async with live.client() as c:
            for _ in range(5):
                r = await post(c, "/api/auth/login", {"password": "wrong password!"})
                assert r.status_code == 401
            r = await post(c, "/api/auth/login", {"password": PASSWORD})
            assert r.status_code == 429  # even the right password: the client must wait
            # Back-off: seconds after five failures, not the whole window (issue 17 item 3).
            assert 1 <= int(r.headers["retry-after"]) <= 2, r.headers
            assert "too many failed attempts" in r.json()["error"]
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert any("wrong password" in m for m in refused)
        assert any("429" in m or "too many" in m for m in refused)


def test_the_limiter_counts_clients_and_the_total() -> None:
    t = [0.0]
    lim = LoginLimiter(per_client=3, total=5, window_s=100, clock=lambda: t[0])
    for _ in range(3):
        assert lim.retry_after("a") is None
        lim.failed("a")
    assert lim.retry_after("a") == 1  # back-off starts
    assert lim.retry_after("b") is None
    lim.failed("b")
    lim.failed("c")
    # 5 failures from anywhere: those that failed wait the window, a new client does not
    assert lim.retry_after("d") is None
    assert lim.retry_after("b") == 100
    t[0] = 50
    assert lim.retry_after("b") == 50
    t[0] = 100.5
    assert lim.retry_after("a") is None and lim.retry_after("b") is None
    lim.failed("e")
    lim.succeeded("e")
    assert lim.retry_after("e") is None


async def test_resident_pin_opens_the_mode_but_not_the_config(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, live.client() as c:
        r = await post(c, "/api/auth/pin", {"pin": PIN})
        assert r.status_code == 409 and "no resident PIN" in r.json()["error"]
        async with installer_client(live) as inst:
            r = await post(inst, "/api/auth/pin", {"pin": "12a4"}, "PUT")
            assert r.status_code == 422 and r.json()["problems"][0]["where"] == "pin"
            assert (await post(inst, "/api/auth/pin", {"pin": PIN}, "PUT")).status_code == 200
        r = await post(c, "/api/auth/pin", {"pin": "0000"})
        assert r.status_code == 401
        r = await post(c, "/api/auth/pin", {"pin": PIN})
        assert r.status_code == 200 and r.json()["role"] == "resident"
        assert (await post(c, "/api/commands/mode", {"mode": "heating"})).status_code == 200
        assert (await c.get("/api/config")).status_code == 403
        r = await post(c, "/api/config/validate", {"config": {}})
        assert r.status_code == 403
        assert (await c.get("/api/tokens")).status_code == 403
        assert (await post(c, "/api/auth/logout")).status_code == 200
        assert (await post(c, "/api/commands/mode", {"mode": "grid"})).status_code == 401


async def test_api_tokens_for_home_assistant(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live:
        async with installer_client(live) as inst:
            r = await post(inst, "/api/tokens", {"name": "home-assistant", "role": "resident"})
            assert r.status_code == 200
            tok = r.json()
            assert tok["token"].startswith("hth_")
            listed = (await inst.get("/api/tokens")).json()
            assert [t["name"] for t in listed] == ["home-assistant"]
            assert "token" not in listed[0]
        bearer = {"Authorization": f"Bearer {tok['token']}"}
        async with live.client(headers=bearer) as ha:
            # No CSRF token needed: a bearer token is not sent by a browser on its own.
            r = await ha.post("/api/commands/mode", json={"mode": "heating"})
            assert r.status_code == 200, r.text
            assert (await ha.get("/api/config")).status_code == 403  # resident token
        async with live.client(headers={"Authorization": "Bearer hth_forged"}) as bad:
            assert (await bad.get("/api/state")).status_code == 401
            assert (await bad.post("/api/commands/mode", json={"mode": "grid"})).status_code == 401
        async with installer_client(live) as inst:
            r = await post(inst, f"/api/tokens/{tok['id']}", None, "DELETE")
            assert r.status_code == 200
            assert (await post(inst, "/api/tokens/nope", None, "DELETE")).status_code == 404
        async with live.client(headers=bearer) as ha:
            assert (await ha.post("/api/commands/mode", json={"mode": "grid"})).status_code == 401
        assert tok["token"] not in (tmp_path / "hmi-auth.json").read_text()


async def test_sessions_survive_a_restart_and_a_password_change_ends_them(
        tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live:
        async with installer_client(live) as inst:
            sid = inst.cookies["hearth_sid"]
        # A new process with the same store: the login still holds.
        again = AuthStore(tmp_path / "hmi-auth.json")
        assert again.setup_code is None
        s = again.session(sid)
        assert s is not None and s.role == "installer"
        async with installer_client(live) as a, installer_client(live) as b:
            r = await post(a, "/api/auth/password", {"current_password": "nope nope nope",
                                                      "new_password": "another long one"})
            assert r.status_code == 422
            assert r.json()["problems"][0]["where"] == "current_password"
            r = await post(a, "/api/auth/password", {"current_password": PASSWORD,
                                                      "new_password": "another long one"})
            assert r.status_code == 200
            assert (await a.get("/api/tokens")).status_code == 200  # this browser stays in
            assert (await b.get("/api/tokens")).status_code == 401  # the other one is out


async def test_a_wall_panel_keeps_a_resident_login(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, installer_client(live) as c:
        r = await post(c, "/api/auth/panel")
        assert r.status_code == 200 and r.json()["role"] == "resident"
        assert "max-age=2592000" in _cookie_attrs(r, "hearth_sid")  # 30 days
        assert (await c.get("/api/tokens")).status_code == 403
        assert (await post(c, "/api/commands/pause", {"paused": True})).status_code == 200


def test_a_broken_auth_store_is_refused_not_opened(tmp_path: Path) -> None:
    p = tmp_path / "hmi-auth.json"
    p.write_text("{not json")
    with pytest.raises(InputError) as err:
        AuthStore(p)
    assert "not a valid HMI auth store" in str(err.value)
    p.write_text(json.dumps({"version": 99}))
    with pytest.raises(InputError):
        AuthStore(p)


async def test_private_view_needs_a_login(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live:
        live.ctx.settings = live.ctx.settings.model_copy(update={"public_view": False})
        async with live.client() as c:
            assert (await c.get("/api/state")).status_code == 401
            assert (await c.get("/api/events")).status_code == 401
            assert (await c.get("/api/auth/session")).json()["public_view"] is False
        async with installer_client(live) as inst:
            assert (await inst.get("/api/state")).status_code == 200


def test_reset_password_from_the_command_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from hmi.cli import register

    path = tmp_path / "hmi-auth.json"
    store = AuthStore(path)
    assert store.setup_code is not None
    store.setup(store.setup_code, PASSWORD)
    assert AuthStore(path).login(PASSWORD) is not None
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["hmi", "reset-password", "--auth-store", str(path)])
    assert args.func(args) == 0
    assert "new one-time setup code" in capsys.readouterr().out
    again = AuthStore(path)
    assert again.setup_required and again.setup_code is not None
    assert again.login(PASSWORD) is None and again.sessions == {}
    args = parser.parse_args(["hmi", "reset-password", "--auth-store", str(tmp_path / "none")])
    with pytest.raises(InputError):
        args.func(args)
