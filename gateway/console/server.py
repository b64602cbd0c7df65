"""The console's HTTP surface (aiohttp): the page, login, the live stream and the actions.

Routes (JSON unless said otherwise):

=========================================  ============================================
``GET /``                                  the page (static HTML, CSS and JS from the package)
``POST /api/login``                        ``{"name", "password"}`` → session cookie + CSRF token
``POST /api/logout``                       ends the session (CSRF header required)
``GET /api/session``                       who is logged in, and the CSRF token; 401 if nobody
``GET /api/stream``                        server-sent events: ``snapshot``, then ``alarm``,
                                           ``device``, ``event``, ``health``; ``expired``
``POST /api/alarms/{id}/command``          ``{"action": "ack"|"escalate"|"resolve", "note"}``
=========================================  ============================================

An action goes through the gateway's ``command_handler``, the path MQTT's ``alarm/<id>/set``
takes, with the logged-in operator's name as ``by``. Every state-changing request needs a
live session cookie (HttpOnly, SameSite=Strict, Secure under TLS) *and* the session's CSRF
token in the ``X-CSRF-Token`` header; bodies are capped at :data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.console.auth import MAX_PASSWORD_CHARS, Accounts, LoginLimiter, Session, Sessions
from gateway.console.feed import LiveFeed, Message

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "alarmgw_console"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 16 * 1024  # bytes: a login or a command with a note is far smaller
MAX_NOTE_CHARS = 500
ACTIONS = ("ack", "escalate", "resolve")
PING_EVERY_S = 15.0

CommandHandler = Callable[[str, bytes, str], Coroutine[Any, Any, dict[str, Any]]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class ConsoleApp:
    """The web application; :meth:`build` returns the aiohttp app to serve.

    ``commands`` returns the gateway's command handler when called (it may be set after the
    console is built, or be None while no alarm engine runs).
    """

    def __init__(self, feed: LiveFeed, accounts: Accounts, sessions: Sessions,
                 limiter: LoginLimiter, commands: Callable[[], CommandHandler | None],
                 *, secure: bool = False) -> None:
        self.feed = feed
        self.accounts = accounts
        self.sessions = sessions
        self.limiter = limiter
        self.commands = commands
        self.secure = secure
        self._streams: set[asyncio.Queue[Message | None]] = set()

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY,
                              middlewares=[self._headers, self._errors_as_json])
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/session", self.session)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_post("/api/alarms/{alarm_id}/command", self.command)
        app.on_shutdown.append(self._end_streams)
        return app

    # -- middlewares --------------------------------------------------------------------------
    @web.middleware
    async def _headers(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            _secure_headers(response, self.secure)
        return response

    @web.middleware
    async def _errors_as_json(self, request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                              ) -> web.StreamResponse:
        """API errors as ``{"ok": false, "error"}`` so the page can show them."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/") or exc.status < 400:
                raise
            return _error(exc.status, exc.reason, headers=exc.headers)

    # -- pages --------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Content-Type": "text/html; charset=utf-8"})

    # -- sessions -----------------------------------------------------------------------------
    def current(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def require(self, request: web.Request, *, csrf: bool) -> Session:
        """The request's live session, or a 401 (no session) / 403 (bad CSRF token)."""
        session = self.current(request)
        if session is None:
            raise web.HTTPUnauthorized(reason="not logged in")
        if csrf and not session.csrf_ok(request.headers.get(CSRF_HEADER)):
            raise web.HTTPForbidden(reason="missing or wrong CSRF token")
        return session

    async def login(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "?"
        wait = self.limiter.retry_after(address)
        if wait:
            log.warning("event=console_login_throttled address=%s", address)
            return _error(429, "too many failed logins; try again later",
                          headers={"Retry-After": str(int(wait + 0.999))})
        body = await _json_body(request)
        name, password = body.get("name"), body.get("password")
        if not (isinstance(name, str) and isinstance(password, str)) or not name \
                or len(name) > 64 or len(password) > MAX_PASSWORD_CHARS:
            raise web.HTTPBadRequest(reason="name and password are required")
        if not await asyncio.to_thread(self.accounts.verify, name, password):
            self.limiter.failed(address)
            log.warning("event=console_login_failed address=%s user=%r", address, name)
            raise web.HTTPUnauthorized(reason="wrong name or password")
        self.limiter.succeeded(address)
        session = self.sessions.create(name)
        log.info("event=console_login user=%r address=%s", name, address)
        response = web.json_response(self._session_doc(session))
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict",
                            secure=self.secure, path="/")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=True)
        self.sessions.end(session.id)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def session(self, request: web.Request) -> web.StreamResponse:
        session = self.current(request)
        if session is None:
            return _error(401, "not logged in", extra={"accounts": len(self.accounts)})
        return web.json_response(self._session_doc(session))

    def _session_doc(self, session: Session) -> dict[str, Any]:
        return {"ok": True, "name": session.name, "csrf": session.csrf,
                "expires_in_s": round(self.sessions.remaining_s(session))}

    # -- actions ------------------------------------------------------------------------------
    async def command(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=True)
        body = await _json_body(request)
        action, note = body.get("action"), body.get("note", "")
        if action not in ACTIONS:
            raise web.HTTPBadRequest(reason=f"action must be one of {', '.join(ACTIONS)}")
        if note is None:
            note = ""
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise web.HTTPBadRequest(reason=f"note must be text of at most {MAX_NOTE_CHARS} "
                                            "characters")
        handler = self.commands()
        if handler is None:
            return _error(503, "the alarm engine is not running")
        alarm_id = request.match_info["alarm_id"]
        payload = json.dumps({"action": action, "by": session.name, "note": note.strip()},
                             ensure_ascii=False).encode()
        result = await handler(alarm_id, payload, f"console:{session.name}")
        log.info("event=console_command alarm=%s action=%s user=%r ok=%s", alarm_id, action,
                 session.name, result.get("ok"))
        return web.json_response(result, status=200 if result.get("ok") else 409)

    # -- live stream --------------------------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=False)
        queue = self.feed.subscribe()
        self._streams.add(queue)
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store", "X-Accel-Buffering": "no",
            })
            _secure_headers(response, self.secure)
            await response.prepare(request)
            snapshot = await self.feed.snapshot()
            snapshot["user"] = session.name
            await response.write(b"retry: 1000\n\n" + _sse("snapshot", json.dumps(
                snapshot, ensure_ascii=False, separators=(",", ":"))))
            await self._relay(queue, response, session)
        except ConnectionError:
            pass  # the page went away; its EventSource reconnects if it still exists
        finally:
            self._streams.discard(queue)
            self.feed.unsubscribe(queue)
        return response

    async def _relay(self, queue: asyncio.Queue[Message | None], response: web.StreamResponse,
                     session: Session) -> None:
        while True:
            wait = min(PING_EVERY_S, self.sessions.remaining_s(session))
            try:
                message = await asyncio.wait_for(queue.get(), max(wait, 0.01))
            except TimeoutError:
                message = ("", "")
            if not self.sessions.alive(session):
                await response.write(_sse("expired", "{}"))
                return
            if message is None:
                return
            name, data = message
            await response.write(_sse(name, data) if name else b": ping\n\n")

    async def _end_streams(self, app: web.Application) -> None:
        for queue in list(self._streams):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


def _sse(name: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY,
                                            actual_size=request.content_length)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="send application/json")
    raw = await request.read()  # raises 413 past client_max_size, chunked bodies included
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return body


def _error(status: int, message: str, *, headers: Any = None,
           extra: dict[str, Any] | None = None) -> web.Response:
    response = web.json_response({"ok": False, "error": message, **(extra or {})},
                                 status=status)
    for key in ("Retry-After",):
        if headers and key in headers:
            response.headers[key] = headers[key]
    return response


def _secure_headers(response: web.StreamResponse, tls: bool) -> None:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cache-Control", "no-store")
    if tls:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
