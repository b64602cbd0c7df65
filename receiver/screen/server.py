"""The wall screen's HTTP surface (aiohttp): the page, login, the live stream, the actions.

=====================================  ==================================================
``GET /``                              the page (static HTML, CSS, JS from the package)
``POST /api/login``                    ``{"name", "password"}`` → session cookie + CSRF token
``POST /api/logout``                   ends the session (CSRF header required)
``GET /api/session``                   who is logged in and the CSRF token; 401 if nobody
``GET /api/stream``                    server-sent events: ``snapshot``, then ``alarm``,
                                       ``site``, ``event``, ``health``; ``expired``
``POST /api/alarms/{ref}/action``      ``{"action": "take"|"on_scene"|"close", "note"}``
``POST /api/sites/{id}/note``          an officer has seen that a site's link is lost
=====================================  ==================================================

Every state-changing request needs the session cookie (HttpOnly, SameSite=Strict, Secure
under TLS) and the session's CSRF token in ``X-CSRF-Token``. The officer's display name is
the ``by`` of every step, and what the hospital's desk sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from gateway.console.http import secure_headers
from gateway.core.clock import rfc3339
from gateway.core.ports import Clock
from receiver.config import ReceiverConfig
from receiver.desk import MAX_NOTE_CHARS, Desk
from receiver.feed import Feed, Message
from receiver.links import Links
from receiver.model import PoliceState
from receiver.screen.auth import MAX_PASSWORD_CHARS, Accounts, LoginLimiter, Session, Sessions
from receiver.store import Store

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "alarm_receiver_screen"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 16 * 1024
PING_EVERY_S = 5.0
HISTORY_TYPES = ("alarm_received", "officer_action", "link_lost", "link_restored",
                 "link_noted", "test_report", "refused", "receiver_start")
HISTORY_LIMIT = 300
ACTIONS = {"take": PoliceState.TAKEN, "on_scene": PoliceState.ON_SCENE,
           "close": PoliceState.CLOSED}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ScreenApp:
    """The web application; :meth:`routes` adds it to an aiohttp application."""

    def __init__(self, config: ReceiverConfig, desk: Desk, links: Links, feed: Feed,
                 store: Store, clock: Clock, accounts: Accounts, sessions: Sessions,
                 limiter: LoginLimiter, health: Callable[[], dict[str, Any]],
                 *, secure: bool = False) -> None:
        self.config = config
        self.desk = desk
        self.links = links
        self.feed = feed
        self.store = store
        self.clock = clock
        self.accounts = accounts
        self.sessions = sessions
        self.limiter = limiter
        self.health = health
        self.secure = secure

    def routes(self, app: web.Application) -> None:
        app.middlewares.extend([self._headers, self._errors_as_json])
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/session", self.session)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_post("/api/alarms/{ref}/action", self.action)
        app.router.add_post("/api/sites/{site}/note", self.note_site)
        app.on_shutdown.append(self._end_streams)

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            secure_headers(response, tls=self.secure)
        return response

    @web.middleware
    async def _errors_as_json(self, request: web.Request, handler: Handler
                              ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/") or exc.status < 400:
                raise
            return _error(exc.status, exc.reason, headers=exc.headers)

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Content-Type": "text/html; charset=utf-8"})

    # -- sessions ---------------------------------------------------------------------------
    def current(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def require(self, request: web.Request, *, csrf: bool) -> Session:
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
            return _error(429, "too many failed logins; try again later",
                          headers={"Retry-After": str(int(wait + 0.999))})
        body = await json_body(request)
        name, password = body.get("name"), body.get("password")
        if not (isinstance(name, str) and isinstance(password, str)) or not name \
                or len(name) > 64 or len(password) > MAX_PASSWORD_CHARS:
            raise web.HTTPBadRequest(reason="name and password are required")
        officer = await asyncio.to_thread(self.accounts.verify, name, password)
        if officer is None:
            self.limiter.failed(address)
            log.warning("event=screen_login_failed address=%s user=%r", address, name)
            raise web.HTTPUnauthorized(reason="wrong name or password")
        self.limiter.succeeded(address)
        session = await self.sessions.create(name)
        log.info("event=screen_login user=%r address=%s", name, address)
        response = web.json_response(self._session_doc(session))
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict",
                            secure=self.secure, path="/",
                            max_age=int(self.sessions.remaining_s(session)))
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=True)
        await self.sessions.end(session)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def session(self, request: web.Request) -> web.StreamResponse:
        session = self.current(request)
        if session is None:
            return _error(401, "not logged in", extra={"accounts": len(self.accounts)})
        return web.json_response(self._session_doc(session))

    def _session_doc(self, session: Session) -> dict[str, Any]:
        return {"ok": True, "name": session.name, "shown": self.accounts.shown(session.name),
                "csrf": session.csrf, "expires_in_s": round(self.sessions.remaining_s(session))}

    # -- actions ----------------------------------------------------------------------------
    async def action(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=True)
        body = await json_body(request)
        action, note = body.get("action"), body.get("note") or ""
        if action not in ACTIONS:
            raise web.HTTPBadRequest(reason=f"action must be one of {', '.join(ACTIONS)}")
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise web.HTTPBadRequest(reason=f"note: text of at most {MAX_NOTE_CHARS} characters")
        ref = request.match_info["ref"]
        if not ref.isdigit() or len(ref) > 18:
            raise web.HTTPNotFound(reason="no such alarm")
        result = await self.desk.act(int(ref), ACTIONS[action],
                                     self.accounts.shown(session.name), note)
        if result.error is not None:
            return _error(result.status, result.error)
        assert result.record is not None
        return web.json_response({"ok": True, "alarm": self.desk.document(result.record)})

    async def note_site(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=True)
        site = request.match_info["site"]
        if self.config.site(site) is None:
            raise web.HTTPNotFound(reason="no such site")
        if not await self.links.note(site, self.accounts.shown(session.name)):
            return _error(409, "the link of this site is not lost")
        return web.json_response({"ok": True, "site": self.links.document(site)})

    # -- live stream ------------------------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        session = self.require(request, csrf=False)
        queue = self.feed.subscribe()
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
            secure_headers(response, tls=self.secure)
            await response.prepare(request)
            snapshot = await self.snapshot()
            snapshot["user"] = self.accounts.shown(session.name)
            await response.write(b"retry: 1000\n\n" + sse("snapshot", _dumps(snapshot)))
            await self._relay(queue, response, session)
        except ConnectionError:
            pass  # the page went away; its EventSource reconnects if it still exists
        finally:
            self.feed.unsubscribe(queue)
        return response

    async def _relay(self, queue: asyncio.Queue[Message | None], response: web.StreamResponse,
                     session: Session) -> None:
        while True:
            try:
                async with asyncio.timeout(PING_EVERY_S):  # not wait_for: it can swallow a cancel
                    message = await queue.get()
            except TimeoutError:
                message = ("health", _dumps(self.health_message()))
            if not self.sessions.alive(session):
                await response.write(sse("expired", "{}"))
                return
            if message is None:
                return
            await response.write(sse(*message))

    async def _end_streams(self, app: web.Application) -> None:
        self.feed.close()

    # -- the snapshot -----------------------------------------------------------------------
    def health_message(self) -> dict[str, Any]:
        return {"now": rfc3339(self.clock.wall()), "health": self.health()}

    async def snapshot(self) -> dict[str, Any]:
        day_start = self.day_start()
        since = rfc3339(day_start)
        alarms = [self.desk.document(r) for r in self.desk.records()
                  if r.open or r.history[-1].ts >= since]
        return {**self.health_message(), "day_start": since,
                "receiver": {"id": self.config.receiver.id, "name": self.config.receiver.name,
                             "timezone": self.config.receiver.timezone},
                "alarms": alarms, "sites": self.links.documents(),
                "history": self.history(day_start)}

    def history(self, since: float) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(HISTORY_TYPES))
        rows = self.store.rows(f"SELECT ts, type, site, detail FROM events WHERE ts >= ? AND "
                               f"type IN ({marks}) ORDER BY seq DESC LIMIT ?", since,
                               *HISTORY_TYPES, HISTORY_LIMIT)
        out = []
        for ts, type_, site, detail in reversed(rows):
            d = json.loads(detail)
            d.pop("body", None)
            out.append({**d, "ts": rfc3339(ts), "type": type_, "site": site})
        return out

    def day_start(self) -> float:
        """Unix seconds of the last local midnight (the receiver's time zone)."""
        try:
            zone = ZoneInfo(self.config.receiver.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("Asia/Ho_Chi_Minh")
        now = datetime.fromtimestamp(self.clock.wall(), tz=zone)
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def sse(name: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="send application/json")
    raw = await request.read()
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
    with contextlib.suppress(KeyError, TypeError):
        response.headers["Retry-After"] = headers["Retry-After"]
    return response


