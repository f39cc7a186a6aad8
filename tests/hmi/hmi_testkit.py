"""Helpers for the HMI tests: the demo site (real Service + controller + plant model +
ledger) served by uvicorn on a free loopback port, and an httpx client that logs in the
way the page does (CSRF token from /api/auth/session, cookies from the answers).

Ticks are driven by the tests (`site.tick()`), so what the API shows is deterministic and
no test waits on a wall-clock schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from hmi.app import create_app
from hmi.demo import DemoSite, build_demo
from hmi.server import HmiServer, bind

PASSWORD = "correct horse battery"
PIN = "4711"
TODAY = datetime(2025, 4, 21, tzinfo=UTC)


@dataclass
class Live:
    site: DemoSite
    server: HmiServer
    url: str

    @property
    def ctx(self) -> Any:
        return self.site.context

    def ticks(self, n: int) -> None:
        for _ in range(n):
            self.site.tick()

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20.0, **kw)


@contextlib.asynccontextmanager
async def live_demo(data_dir: Path, *, ticks: int = 5, ledger: bool = True,
                    site_path: Path | None = None, **kw: Any) -> AsyncIterator[Live]:
    """The demo site with its HMI on a free port; `ticks` ticks already run."""
    extra = {"site": site_path} if site_path is not None else {}
    site = build_demo(data_dir, ledger=ledger, today=TODAY, **extra, **kw)
    for _ in range(ticks):
        site.tick()
    server = HmiServer(create_app(site.context), sock=bind("127.0.0.1", 0))
    await server.start()
    try:
        yield Live(site, server, server.url)
    finally:
        await server.stop()
        if site.writer is not None:
            site.writer.close()
        site.context.commands.close()


async def csrf(client: httpx.AsyncClient) -> str:
    r = await client.get("/api/auth/session")
    r.raise_for_status()
    token: str = r.json()["csrf_token"]
    return token


async def post(client: httpx.AsyncClient, path: str, body: Any = None,
               method: str = "POST") -> httpx.Response:
    """A state change the way the page sends it: with the session's CSRF token."""
    token = await csrf(client)
    return await client.request(method, path, json=body, headers={"X-CSRF-Token": token})


async def setup_installer(live: Live, client: httpx.AsyncClient) -> None:
    """First start: the setup code (printed to the log) sets the installer password."""
    code = live.ctx.auth.setup_code
    assert code is not None
    r = await post(client, "/api/auth/setup", {"setup_code": code, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "installer"


async def login_installer(client: httpx.AsyncClient) -> None:
    r = await post(client, "/api/auth/login", {"password": PASSWORD})
    assert r.status_code == 200, r.text


@contextlib.asynccontextmanager
async def installer_client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as the installer (setting the password first if needed)."""
    async with live.client() as client:
        if live.ctx.auth.setup_required:
            await setup_installer(live, client)
        else:
            await login_installer(client)
        yield client


async def wait_for(cond: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition"
                   ) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)
