"""The console's login routes: log in, log out, who am I, and the wall screen's door.

``POST /api/login`` counts the attempt first (:class:`~gateway.console.throttle.LoginThrottle`,
429 with ``Retry-After`` while a delay runs), then checks the password on the console's own
pool (:class:`~gateway.console.auth.PasswordChecks`, 503 with ``Retry-After: 1`` while it is
full), then stores the session durably before its cookie is sent.
``GET /display?token=…`` turns the browser into a wall screen (see ``access``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.console.access import DisplayAccess, LoginJournal, Role
from gateway.console.auth import MAX_PASSWORD_CHARS, Accounts, PasswordChecks
from gateway.console.http import error, json_body
from gateway.console.sessions import Session, Sessions
from gateway.console.throttle import LoginThrottle

log = logging.getLogger(__name__)

COOKIE = "alarmgw_console"
CSRF_HEADER = "X-CSRF-Token"
DISPLAY_COOKIE = "alarmgw_display"
DISPLAY_COOKIE_S = 10 * 365 * 86400  # a wall screen stays one until its token changes
DISPLAY_ACCOUNT = "#display"
HOLD_S = 1.0  # a refused login waits this long (at most) before its answer  # the throttle's account name for display-token attempts


@dataclass
class Auth:
    """Everything that decides who may see and who may act."""

    accounts: Accounts
    checks: PasswordChecks
    sessions: Sessions
    throttle: LoginThrottle
    display: DisplayAccess
    journal: LoginJournal


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a request comes from: an operator (``session`` set) or a wall screen."""

    role: Role
    session: Session | None = None


class LoginRoutes:
    """``/api/login``, ``/api/logout`` and ``/api/session`` of the console. ``hold_s``: a
    refused login (429, 503) is answered only after about this long (or the
    delay, if shorter), so a flood of parallel requests costs the event loop at most one
    answer per connection per ``hold_s``, not one per round trip; the alarm path shares
    that loop."""

    def __init__(self, auth: Auth, *, secure: bool, hold_s: float = HOLD_S) -> None:
        self.auth = auth
        self.secure = secure
        self.hold_s = hold_s

    def _hold(self) -> float:
        """``hold_s`` ± 50 %: held answers to a flood come back spread out, not in bursts."""
        return self.hold_s * (0.5 + random.random())

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/session", self.session)
        app.router.add_get("/display", self.display)

    # -- who is asking ------------------------------------------------------------------------
    def operator(self, request: web.Request) -> Session | None:
        return self.auth.sessions.get(request.cookies.get(COOKIE))

    def is_display(self, request: web.Request) -> bool:
        display = self.auth.display
        return display.by_address(request.remote) or display.cookie_ok(
            request.cookies.get(DISPLAY_COOKIE))

    def viewer(self, request: web.Request) -> Viewer | None:
        session = self.operator(request)
        if session is not None:
            return Viewer(Role.OPERATOR, session)
        return Viewer(Role.DISPLAY) if self.is_display(request) else None

    def require(self, request: web.Request, *, csrf: str | None) -> Session:
        """The live operator session, or 401 (none) / 403 (wrong CSRF token)."""
        session = self.operator(request)
        if session is None:
            raise web.HTTPUnauthorized(reason="not logged in")
        if not session.csrf_ok(csrf):
            raise web.HTTPForbidden(reason="missing or wrong CSRF token")
        return session

    # -- routes -------------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "?"
        body = await json_body(request)
        name, password = body.get("name"), body.get("password")
        if not (isinstance(name, str) and isinstance(password, str)) or not name \
                or len(name) > 64 or len(password) > MAX_PASSWORD_CHARS:
            raise web.HTTPBadRequest(reason="name and password are required")
        auth = self.auth
        user = name if auth.accounts.known(name) else None
        wait = auth.throttle.reserve(name, address)
        if wait:
            await auth.journal.refused("throttled", user=user, address=address,
                                       attempts=auth.throttle.attempts(name, address))
            await asyncio.sleep(min(wait, self._hold()))
            return error(429, "too many failed logins; try again shortly",
                         retry_after=math.ceil(max(1.0, wait - self.hold_s)))
        if not auth.checks.admit():
            await auth.journal.refused("busy", user=user, address=address,
                                       attempts=auth.throttle.attempts(name, address))
            await asyncio.sleep(self._hold())
            return error(503, "busy checking other logins; try again", retry_after=1)
        if not await auth.checks.verify(name, password):
            await auth.journal.refused("wrong_password", user=user, address=address,
                                       attempts=auth.throttle.attempts(name, address))
            raise web.HTTPUnauthorized(reason="wrong name or password")
        auth.throttle.succeeded(name, address)
        auth.journal.counters.succeeded += 1
        session = await auth.sessions.create(name)
        log.info("event=console_login user=%r address=%s", name, address)
        response = web.json_response(self.session_doc(session, request))
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict",
                            secure=self.secure, path="/",
                            max_age=int(auth.sessions.remaining_s(session)))
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=request.headers.get(CSRF_HEADER))
        await self.auth.sessions.end(session)
        log.info("event=console_logout user=%r", session.name)
        response = web.json_response({"ok": True, "display": self.is_display(request)})
        response.del_cookie(COOKIE, path="/")
        return response

    async def session(self, request: web.Request) -> web.StreamResponse:
        session = self.operator(request)
        if session is None:
            return error(401, "not logged in", extra={
                "accounts": len(self.auth.accounts), "display": self.is_display(request)})
        return web.json_response(self.session_doc(session, request))

    def session_doc(self, session: Session, request: web.Request) -> dict[str, Any]:
        return {"ok": True, "role": str(Role.OPERATOR), "name": session.name,
                "csrf": session.csrf, "display": self.is_display(request),
                "expires_in_s": round(self.auth.sessions.remaining_s(session))}

    async def display(self, request: web.Request) -> web.StreamResponse:
        """``/display?token=…``: a right token makes this browser a wall screen."""
        address = request.remote or "?"
        auth = self.auth
        wait = auth.throttle.reserve(DISPLAY_ACCOUNT, address)
        attempts = auth.throttle.attempts(DISPLAY_ACCOUNT, address)
        if wait:
            await auth.journal.refused("throttled", user=DISPLAY_ACCOUNT, address=address,
                                       attempts=attempts)
            return web.Response(status=429, text="Too many wrong display tokens; try again "
                                f"in {math.ceil(wait)} s.\n",
                                headers={"Retry-After": str(math.ceil(wait))})
        cookie = auth.display.cookie
        if cookie is None or not auth.display.token_ok(request.query.get("token")):
            await auth.journal.refused("wrong_display_token", user=DISPLAY_ACCOUNT,
                                       address=address, attempts=attempts)
            return web.Response(status=403, text="Wrong or missing display token.\n")
        auth.throttle.succeeded(DISPLAY_ACCOUNT, address)
        log.info("event=console_display_opened address=%s", address)
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(DISPLAY_COOKIE, cookie, httponly=True, samesite="Strict",
                            secure=self.secure, path="/", max_age=DISPLAY_COOKIE_S)
        return response
