"""The HMI's FastAPI app: JSON API (+ OpenAPI), live updates (SSE), the wall page and the
installer pages as static files it serves itself (no CDN: the Pi may be offline).

    ctx = HmiContext.build(cfg, publisher, ServiceOverrides(service), config_path=path)
    app = create_app(ctx)

Everything the app touches comes in through `HmiContext` (state, commands, auth, ledger,
config file, device tests), so tests and the demo assemble it from the same parts as
`hearth run`. Slow work (argon2, ledger queries, device tests) never runs on the event
loop, which the HMI shares with the control loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.bridge.provisioning import ConfigStore
from controller.config.hmi import HmiSection
from controller.config.models import SiteConfig
from controller.errors import InputError
from hmi.auth import AuthStore, LoginLimiter
from hmi.commands import CommandHandler, OverridesPort
from hmi.devices import DeviceTester, SiteDevices
from hmi.publisher import HmiPublisher
from hmi.revenue import LedgerAccess, LedgerRevenue, NoLedger, Unavailable
from hmi.security import BodyLimit, SecurityHeaders, StateChangeGuard, client_of

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
API_VERSION = "1"


def hmi_settings(cfg: SiteConfig) -> HmiSection:
    """The site's [hmi] section (a default one until SiteConfig has the field)."""
    section = getattr(cfg, "hmi", None)
    return section if isinstance(section, HmiSection) else HmiSection()


@dataclass
class HmiContext:
    cfg: SiteConfig
    settings: HmiSection
    publisher: HmiPublisher
    commands: CommandHandler
    auth: AuthStore
    limiter: LoginLimiter
    ledger: LedgerAccess
    config_store: ConfigStore | None
    devices: DeviceTester
    utc: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Called after a config was saved (the service in safe mode restarts to apply it).
    on_config_saved: Callable[[], None] | None = None

    def site_config(self) -> SiteConfig:
        """The site file as saved (the service runs with `cfg` until it restarts)."""
        return self.config_store.config if self.config_store is not None else self.cfg

    def now_s(self) -> float:
        """The service's 'now' (the last tick's time; the demo's clock runs fast)."""
        t = self.publisher.last_tick
        return t.at_utc.timestamp() if t is not None else self.utc().timestamp()

    @classmethod
    def build(cls, cfg: SiteConfig, publisher: HmiPublisher, port: OverridesPort, *,
              config_path: str | Path | None = None, auth_store: str | Path | None = None,
              ledger: LedgerAccess | None = None, devices: DeviceTester | None = None,
              utc: Callable[[], datetime] | None = None,
              config_store: ConfigStore | None = None) -> HmiContext:
        """The parts from the site config; any of them can be given instead."""
        s = hmi_settings(cfg)
        if ledger is None:
            ledger = LedgerRevenue(cfg.ledger.url, cfg.site.id, cfg.site.currency) \
                if cfg.ledger.enabled else NoLedger(cfg.site.currency)
        auth = AuthStore(auth_store or s.auth_store(cfg.service.data_dir),
                         resident_session_s=s.resident_session_days * 86_400,
                         installer_session_s=s.installer_session_h * 3600)
        clock = utc or (lambda: datetime.now(UTC))
        store = config_store or (ConfigStore(config_path) if config_path is not None
                                 else None)
        return cls(
            cfg=cfg, settings=s, publisher=publisher,
            commands=CommandHandler(cfg, port, clock), auth=auth,
            limiter=LoginLimiter(s.login_max_failures, s.login_max_failures_total,
                                 s.login_window_s),
            ledger=ledger, config_store=store,
            devices=devices or SiteDevices(lambda: store.config if store else cfg),
            utc=clock)


def _problems(err: InputError) -> list[dict[str, str]]:
    return [{"where": p.where, "reason": p.reason} for p in err.problems]


def create_app(ctx: HmiContext) -> FastAPI:
    import hmi.api.auth
    import hmi.api.control
    import hmi.api.installer
    import hmi.api.live
    import hmi.api.plan

    app = FastAPI(
        title="Hearth HMI", version=API_VERSION,
        description="The wall tablet's API: live state, history, revenue, commands, and the "
                    "installer's configuration. Powers in W (grid import +, battery charge +), "
                    "money as decimal strings in the site currency, sats as integers. "
                    "State changes need a session + X-CSRF-Token, or an API token.",
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
    )
    app.state.hmi = ctx
    app.add_middleware(StateChangeGuard)
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes)  # before routing
    app.add_middleware(SecurityHeaders)  # outermost: every answer carries the headers

    @app.exception_handler(InputError)
    async def _input_error(request: Request, err: InputError) -> JSONResponse:
        log.warning("refused %s %s from %s: %s", request.method, request.url.path,
                    client_of(request), err.render().replace("\n", "; "))
        return JSONResponse({"error": f"invalid input ({err.source})",
                             "problems": _problems(err)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = []
        for e in err.errors():
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path")]
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            if e.get("type") == "extra_forbidden":
                msg = "unknown field"
            elif e.get("type") == "missing":
                msg = "required field is missing"
            problems.append({"where": ".".join(loc) or "body", "reason": msg})
        log.warning("refused %s %s from %s: %s", request.method, request.url.path,
                    client_of(request), "; ".join(f"{p['where']}: {p['reason']}"
                                                  for p in problems))
        return JSONResponse({"error": "invalid request", "problems": problems},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        # Starlette's own (404, 405 for TRACE and other methods) and FastAPI's (a body that
        # is not UTF-8 or nested too deeply to parse): one documented shape for all.
        detail = str(err.detail)
        problems = []
        if detail == "There was an error parsing the body":
            detail = "invalid request"
            problems = [{"where": "body", "reason": "not a JSON document this API can read "
                         "(not UTF-8, or nested too deeply)"}]
        if err.status_code >= 400:
            log.warning("refused %s %s from %s: %d %s", request.method, request.url.path,
                        client_of(request), err.status_code, detail)
        return JSONResponse({"error": detail, "problems": problems},
                            status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, err: Unavailable) -> JSONResponse:
        return JSONResponse({"error": f"not available: {err}", "problems": []},
                            status_code=503)

    app.include_router(hmi.api.live.router)
    app.include_router(hmi.api.control.router)
    app.include_router(hmi.api.auth.router)
    app.include_router(hmi.api.installer.router)
    app.include_router(hmi.api.plan.router)

    def page(name: str) -> Callable[[], Any]:
        async def serve() -> FileResponse:
            return FileResponse(STATIC / name, media_type="text/html",
                                headers={"Cache-Control": "no-cache"})
        return serve

    pages = ["GET", "HEAD"]
    app.add_api_route("/", page("index.html"), methods=pages, include_in_schema=False)
    app.add_api_route("/installer", page("installer.html"), methods=pages,
                      include_in_schema=False)
    app.add_api_route("/api/docs", page("docs.html"), methods=pages, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
