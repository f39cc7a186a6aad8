"""Logging in and out, the first-start setup, the resident PIN, API tokens.

The endpoints that hash (argon2, ~0.1 s) are plain functions: FastAPI runs them in its
thread pool, off the event loop the control loop shares. The ways in are rate-limited per
client address and in total, and every failure is logged with the address.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from hmi.api.common import WRITE_ERRORS, ctx_of
from hmi.app import HmiContext
from hmi.auth import ApiToken, Session
from hmi.schemas import (
    ErrorOut,
    LoginIn,
    OkOut,
    PasswordChangeIn,
    PinIn,
    PinSetIn,
    SessionOut,
    SetupIn,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
)
from hmi.security import (
    Entry,
    Installer,
    Principal,
    Resident,
    clear_session_cookies,
    client_of,
    ensure_csrf_cookie,
    identify,
    refuse,
    set_session_cookies,
)

router = APIRouter(prefix="/api", tags=["auth"])
LIMITED = {**WRITE_ERRORS, 429: {"model": ErrorOut, "description": "Too many failed attempts"}}


def _session_out(ctx: HmiContext, p: Principal | None, csrf: str,
                 session: Session | None = None) -> SessionOut:
    role = session.role if session is not None else (p.role if p is not None else "none")
    via = "session" if session is not None else (p.via if p is not None else "none")
    return SessionOut(role=role, via=via, csrf_token=csrf,
                      setup_required=ctx.auth.setup_required,
                      pin_configured=ctx.auth.pin_configured,
                      public_view=ctx.settings.public_view)


@router.get("/auth/session", response_model=SessionOut,
            summary="Who am I, and the CSRF token to send with changes")
async def session(request: Request, response: Response) -> Any:
    ctx = ctx_of(request)
    try:
        p = identify(request)
    except HTTPException:  # a bad token: say who that is (nobody), do not fail
        p = Principal("none", "none", client_of(request))
    csrf = p.session.csrf if p.session is not None else ensure_csrf_cookie(request, response)
    return _session_out(ctx, p, csrf)


def _gate(request: Request) -> None:
    wait = ctx_of(request).limiter.retry_after(client_of(request))
    if wait is not None:
        s = str(max(1, math.ceil(wait)))
        raise refuse(request, 429, f"too many failed attempts: try again in {s} s",
                     {"Retry-After": s})


def _failed(request: Request, what: str) -> HTTPException:
    ctx_of(request).limiter.failed(client_of(request))
    return refuse(request, 401, what)


def _logged_in(request: Request, response: Response, sid: str, s: Session) -> SessionOut:
    ctx = ctx_of(request)
    ctx.limiter.succeeded(client_of(request))
    set_session_cookies(request, response, sid, s)
    return _session_out(ctx, None, s.csrf, s)


@router.post("/auth/setup", response_model=SessionOut, responses=LIMITED,
             summary="First start: set the installer password with the setup code from the log")
def setup(request: Request, response: Response, body: SetupIn,
          _: Entry) -> Any:
    _gate(request)
    ctx = ctx_of(request)
    if ctx.auth.setup_required and not ctx.auth.check_setup_code(body.setup_code):
        raise _failed(request, "wrong setup code (it is printed in the log of the Hearth "
                               "service at start)")
    sid, s = ctx.auth.setup(body.setup_code, body.password)
    return _logged_in(request, response, sid, s)


@router.post("/auth/login", response_model=SessionOut, responses=LIMITED,
             summary="Installer login (password)")
def login(request: Request, response: Response, body: LoginIn,
          _: Entry) -> Any:
    _gate(request)
    ctx = ctx_of(request)
    if ctx.auth.setup_required:
        raise refuse(request, 409, "no installer password yet: use the setup code")
    got = ctx.auth.login(body.password)
    if got is None:
        raise _failed(request, "wrong password")
    return _logged_in(request, response, *got)


@router.post("/auth/pin", response_model=SessionOut, responses=LIMITED,
             summary="Resident login (PIN)")
def pin(request: Request, response: Response, body: PinIn,
        _: Entry) -> Any:
    _gate(request)
    ctx = ctx_of(request)
    if not ctx.auth.pin_configured:
        raise refuse(request, 409, "no resident PIN is set: the installer can set one")
    got = ctx.auth.pin_login(body.pin)
    if got is None:
        raise _failed(request, "wrong PIN")
    return _logged_in(request, response, *got)


@router.post("/auth/logout", response_model=OkOut, responses=WRITE_ERRORS, summary="Log out")
def logout(request: Request, response: Response, p: Resident) -> Any:
    if p.sid is not None:
        ctx_of(request).auth.end_session(p.sid)
    clear_session_cookies(response)
    return OkOut(message="logged out")


@router.post("/auth/panel", response_model=SessionOut, responses=WRITE_ERRORS,
             summary="Leave this device as a resident wall panel (installer session -> "
                     "long resident session)")
def panel(request: Request, response: Response, p: Installer) -> Any:
    ctx = ctx_of(request)
    if p.sid is None:
        raise refuse(request, 409, "only a browser session can become a wall panel")
    ctx.auth.end_session(p.sid)
    sid, s = ctx.auth.new_session("resident")
    set_session_cookies(request, response, sid, s)
    return _session_out(ctx, None, s.csrf, s)


@router.post("/auth/password", response_model=OkOut, responses=WRITE_ERRORS,
             summary="Change the installer password (ends other installer logins)")
def change_password(request: Request, response: Response, body: PasswordChangeIn,
                    p: Installer) -> Any:
    ctx = ctx_of(request)
    ctx.auth.change_password(body.current_password, body.new_password)
    if p.via == "session":  # this browser stays logged in with a fresh session
        sid, s = ctx.auth.new_session("installer")
        set_session_cookies(request, response, sid, s)
    return OkOut(message="password changed")


@router.put("/auth/pin", response_model=OkOut, responses=WRITE_ERRORS,
            summary="Set or remove the resident PIN (ends resident logins)")
def set_pin(request: Request, body: PinSetIn, _: Installer) -> Any:
    ctx_of(request).auth.set_pin(body.pin)
    return OkOut(message="PIN set" if body.pin else "PIN removed")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_out(t: ApiToken) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, role=t.role, created_at=_iso(t.created_at) or "",
                    last_used_at=_iso(t.last_used_at))


@router.get("/tokens", response_model=list[TokenOut], responses=WRITE_ERRORS,
            summary="API tokens (installer)")
async def tokens(request: Request, _: Installer) -> Any:
    return [_token_out(t) for t in ctx_of(request).auth.list_tokens()]


@router.post("/tokens", response_model=TokenCreatedOut, responses=WRITE_ERRORS,
             summary="Create an API token for Home Assistant or a script (shown once)")
def create_token(request: Request, body: TokenIn, _: Installer) -> Any:
    token, t = ctx_of(request).auth.create_token(body.name, body.role)
    return TokenCreatedOut(**_token_out(t).model_dump(), token=token)


@router.delete("/tokens/{token_id}", response_model=OkOut,
               responses={**WRITE_ERRORS, 404: {"model": ErrorOut}}, summary="Revoke a token")
def revoke_token(request: Request, token_id: str, _: Installer) -> Any:
    if not ctx_of(request).auth.revoke_token(token_id):
        raise refuse(request, 404, f"no token {token_id!r}")
    return OkOut(message="revoked")
