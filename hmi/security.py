"""Request-level security: who is asking (session cookie or API token), role checks, CSRF,
same-origin checks, and the security headers every response carries.

- Browser sessions: an HttpOnly, SameSite=Strict cookie `hearth_sid`. Every POST, PUT,
  DELETE with it must carry `X-CSRF-Token` equal to the session's own token (synchronizer
  token; the page reads it from GET /api/auth/session) and must not come from another
  origin (`Origin`, `Sec-Fetch-Site`).
- The three ways in (setup code, password, PIN) are necessarily open to an unauthenticated
  caller; they are rate-limited and still need a CSRF token: the double-submit value of the
  `hearth_csrf` cookie (SameSite=Strict, so another site can neither send nor read it).
- API tokens (`Authorization: Bearer hth_...`) are not ambient credentials a browser
  attaches by itself, so they need no CSRF token. A bad token is refused, never ignored.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hmi.auth import RANK, ApiToken, Session

log = logging.getLogger(__name__)

SID_COOKIE = "hearth_sid"
CSRF_COOKIE = "hearth_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Declared for the OpenAPI document (and so tools like schemathesis know how to log in).
bearer_scheme = HTTPBearer(auto_error=False, description="API token (Home Assistant, scripts)")
cookie_scheme = APIKeyCookie(name=SID_COOKIE, auto_error=False,
                             description="Browser session (set by the login endpoints)")
csrf_scheme = APIKeyHeader(name=CSRF_HEADER, auto_error=False,
                           description="CSRF token from GET /api/auth/session")


@dataclass(frozen=True)
class Principal:
    role: str  # "none" | "resident" | "installer"
    via: str  # "none" | "session" | "token"
    client: str
    session: Session | None = None
    token: ApiToken | None = None
    sid: str | None = None

    @property
    def who(self) -> str:
        """For the log: who did it."""
        if self.token is not None:
            return f"token {self.token.id} ({self.token.name!r}) from {self.client}"
        if self.session is not None:
            return f"{self.role} session from {self.client}"
        return f"anonymous client {self.client}"


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def refuse(request: Request, status: int, message: str,
           headers: dict[str, str] | None = None) -> HTTPException:
    log.warning("refused %s %s from %s: %s", request.method, request.url.path,
                client_of(request), message)
    return HTTPException(status, message, headers=headers)


def _ctx(request: Request) -> Any:
    return request.app.state.hmi


def identify(request: Request) -> Principal:
    """Who is asking: an API token (a bad one is refused), a browser session, or nobody."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = _ctx(request).auth
    client = client_of(request)
    p = Principal("none", "none", client)
    authz = request.headers.get("authorization")
    if authz is not None:
        scheme, _, value = authz.partition(" ")
        tok = auth.token(value.strip()) if scheme.lower() == "bearer" and value else None
        if tok is None:
            raise refuse(request, 401, "invalid API token",
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        p = Principal(tok.role, "token", client, token=tok)
    else:
        sid = request.cookies.get(SID_COOKIE)
        s = auth.session(sid) if sid else None
        if s is not None and sid is not None:
            p = Principal(s.role, "session", client, session=s, sid=sid)
    request.state.principal = p
    return p


async def principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _sid: Annotated[str | None, Depends(cookie_scheme)],
) -> Principal:
    """The dependency form of `identify` (the two schemes document it in OpenAPI)."""
    return identify(request)


def _same_origin(request: Request) -> str | None:
    """Why a state-changing request looks cross-site, or None."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request (Sec-Fetch-Site: {site})"
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin not in (f"http://{host}", f"https://{host}"):
            return f"cross-origin request from {origin}"
    return None


def check_csrf(request: Request, p: Principal, header: str | None) -> None:
    """For a state-changing request with a browser session (or none)."""
    if request.method in SAFE_METHODS or p.via == "token":
        return
    why = _same_origin(request)
    if why is not None:
        raise refuse(request, 403, why)
    want = p.session.csrf if p.session is not None else request.cookies.get(CSRF_COOKIE, "")
    if not header or not want or not hmac.compare_digest(header.encode(), want.encode()):
        raise refuse(request, 403, f"missing or invalid {CSRF_HEADER} header (get one from "
                                   "GET /api/auth/session)")


def _require(role: str) -> Any:
    """A dependency: the caller has at least `role`, and CSRF passes for state changes."""

    async def dep(request: Request,
                  p: Annotated[Principal, Depends(principal)],
                  csrf: Annotated[str | None, Depends(csrf_scheme)]) -> Principal:
        if RANK[p.role] < RANK[role]:
            if p.role == "none":
                raise refuse(request, 401, f"log in first ({role} role needed)")
            raise refuse(request, 403, f"needs the {role} role (you are {p.role})")
        check_csrf(request, p, csrf)
        return p

    return dep


Resident = Annotated[Principal, Depends(_require("resident"))]
"""A parameter type: the caller is a resident or an installer."""
Installer = Annotated[Principal, Depends(_require("installer"))]


async def _anonymous_entry(request: Request,
                           p: Annotated[Principal, Depends(principal)],
                           csrf: Annotated[str | None, Depends(csrf_scheme)]) -> Principal:
    check_csrf(request, p, csrf)
    return p


Entry = Annotated[Principal, Depends(_anonymous_entry)]
"""For the ways in (setup, login, PIN): anyone, but with a CSRF token."""


async def _viewer(request: Request, p: Annotated[Principal, Depends(principal)]) -> Principal:
    if not _ctx(request).settings.public_view and p.role == "none":
        raise refuse(request, 401, "log in first (this HMI is not public)")
    return p


Viewer = Annotated[Principal, Depends(_viewer)]


def cookie_secure(request: Request) -> bool:
    mode = _ctx(request).settings.cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def set_session_cookies(request: Request, response: Response, sid: str, session: Session
                        ) -> None:
    secure = cookie_secure(request)
    max_age = int(session.expires_at - session.created_at)
    response.set_cookie(SID_COOKIE, sid, max_age=max_age, httponly=True, samesite="strict",
                        secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, session.csrf, max_age=max_age, httponly=False,
                        samesite="strict", secure=secure, path="/")


def ensure_csrf_cookie(request: Request, response: Response) -> str:
    """The anonymous double-submit token: the cookie's, or a new one."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) > 128:
        token = secrets.token_urlsafe(24)
        response.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="strict",
                            secure=cookie_secure(request), path="/")
    return token


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SID_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """Adds the security headers to every response (pure ASGI: streams stay streams).
    `csp`: the page's Content-Security-Policy (the fleet page's is stricter still)."""

    def __init__(self, app: ASGIApp, csp: str = CSP) -> None:
        self.app = app
        self._csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", self._csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


ENTRY_POINTS = frozenset({("POST", "/api/auth/setup"), ("POST", "/api/auth/login"),
                          ("POST", "/api/auth/pin")})


class StateChangeGuard:
    """Before any state-changing API request is routed (and its body read): a credential and
    a CSRF token, or no further. The endpoints then check the role they need. Done here as
    well as in the endpoints so an endpoint that forgot its dependency is still closed, and
    an unauthenticated caller learns nothing from body validation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only the methods that change state; TRACE and others go on to be refused with
        # 405 by the router, not 401 as if a login could make them work.
        if (scope["type"] != "http" or scope["method"] not in STATE_CHANGING
                or not scope["path"].startswith("/api/")):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            self._check(request)
        except HTTPException as err:
            response = JSONResponse({"error": str(err.detail), "problems": []},
                                    status_code=err.status_code, headers=err.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _check(request: Request) -> None:
        p = identify(request)
        if p.via == "token":
            return
        if p.session is None and (request.method, request.url.path) not in ENTRY_POINTS:
            raise refuse(request, 401, "log in first")
        check_csrf(request, p, request.headers.get(CSRF_HEADER))


class _TooLarge(BaseException):
    """Raised from `receive` past the cap; a BaseException so no body parser turns it into
    a generic 400 on the way out."""


class BodyLimit:
    """Refuse request bodies above `max_bytes` with 413 (pure ASGI, before routing): by the
    declared Content-Length at once, and by counting for a body sent without one."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self, scope: Scope) -> JSONResponse:
        request = Request(scope)
        log.warning("refused %s %s from %s: body larger than %d bytes", request.method,
                    request.url.path, client_of(request), self.max_bytes)
        return JSONResponse({"error": f"request body too large (at most {self.max_bytes} "
                                      "bytes)", "problems": []}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refusal(scope)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._refusal(scope)(scope, receive, send)
