"""The console's HTTP surface (aiohttp): the page, the live stream and the actions.

Routes (JSON unless said otherwise; the login routes are in ``login``):

=========================================  ============================================
``GET /``                                  the page (static HTML, CSS and JS from the package)
``GET /display?token=…``                   makes this browser a wall screen (``login``)
``POST /api/login``, ``/api/logout``       ``{"name", "password"}`` → session cookie + CSRF
``GET /api/session``                       who is logged in, and the CSRF token; 401 if nobody
``GET /api/stream``                        server-sent events: ``snapshot``, then ``alarm``,
                                           ``device``, ``event``, ``health``, ``ping`` (every
                                           :data:`PING_EVERY_S` s); ``expired``
``POST /api/alarms/{id}/command``          ``{"action": "ack"|"escalate"|"resolve", "note",
                                           "confirm"}``
=========================================  ============================================

The stream is open to operators and wall screens; actions only to operators. An action goes
through the gateway's ``command_handler``, the path MQTT's ``alarm/<id>/set`` takes, with
the operator's name as ``by``. Every state-changing request needs a live session cookie
(HttpOnly, SameSite=Strict, Secure under TLS) *and* the session's CSRF token in the
``X-CSRF-Token`` header. A resolve needs a note (the outcome); resolving an alarm the police
have been called to needs ``"confirm": true`` as well (409 ``needs_confirmation`` without).
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

from gateway.console.feed import LiveFeed, Message
from gateway.console.http import MAX_BODY, error, json_body, secure_headers, sse
from gateway.console.login import CSRF_HEADER, Auth, LoginRoutes, Viewer
from gateway.core.enums import EntryStatus

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_NOTE_CHARS = 500
ACTIONS = ("ack", "escalate", "resolve")
PING_EVERY_S = 2.0  # the page calls the link lost after 5 s without a word

CommandHandler = Callable[[str, bytes, str], Coroutine[Any, Any, dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConsoleApp:
    """The web application; :meth:`build` returns the aiohttp app to serve.

    ``commands`` returns the gateway's command handler when called (it may be set after the
    console is built, or be None while no alarm engine runs); ``alarm(id)`` returns an
    alarm's current document (or None).
    """

    def __init__(self, feed: LiveFeed, auth: Auth,
                 commands: Callable[[], CommandHandler | None],
                 alarm: Callable[[str], dict[str, Any] | None], *, secure: bool = False) -> None:
        self.feed = feed
        self.auth = auth
        self.commands = commands
        self.alarm = alarm
        self.secure = secure
        self.login = LoginRoutes(auth, secure=secure)
        self._streams: set[asyncio.Queue[Message | None]] = set()

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY,
                              middlewares=[self._headers, self._errors_as_json])
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        self.login.add_to(app)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_post("/api/alarms/{alarm_id}/command", self.command)
        app.on_shutdown.append(self._end_streams)
        return app

    # -- middlewares --------------------------------------------------------------------------
    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            secure_headers(response, tls=self.secure)
        return response

    @web.middleware
    async def _errors_as_json(self, request: web.Request, handler: Handler
                              ) -> web.StreamResponse:
        """API errors as ``{"ok": false, "error"}`` so the page can show them."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/") or exc.status < 400:
                raise
            return error(exc.status, exc.reason)

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Content-Type": "text/html; charset=utf-8"})

    # -- actions ------------------------------------------------------------------------------
    async def command(self, request: web.Request) -> web.StreamResponse:
        session = self.login.require(request, csrf=request.headers.get(CSRF_HEADER))
        body = await json_body(request)
        action, note = body.get("action"), body.get("note", "")
        if action not in ACTIONS:
            raise web.HTTPBadRequest(reason=f"action must be one of {', '.join(ACTIONS)}")
        note = "" if note is None else note
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise web.HTTPBadRequest(reason=f"note must be text of at most {MAX_NOTE_CHARS} "
                                            "characters")
        alarm_id = request.match_info["alarm_id"]
        refusal = self._resolve_refusal(action, note.strip(), body.get("confirm"), alarm_id)
        if refusal is not None:
            return refusal
        handler = self.commands()
        if handler is None:
            return error(503, "the alarm engine is not running")
        payload = json.dumps({"action": action, "by": session.name, "note": note.strip()},
                             ensure_ascii=False).encode()
        result = await handler(alarm_id, payload, f"console:{session.name}")
        log.info("event=console_command alarm=%s action=%s user=%r ok=%s", alarm_id, action,
                 session.name, result.get("ok"))
        return web.json_response(result, status=200 if result.get("ok") else 409)

    def _resolve_refusal(self, action: str, note: str, confirm: Any,
                         alarm_id: str) -> web.Response | None:
        """A resolve is deliberate: it needs the outcome as a note, and a confirmation when
        the police have been called to the alarm."""
        if action != "resolve":
            return None
        if not note:
            return error(400, "a resolve needs a note saying how the alarm ended",
                         extra={"needs_note": True})
        doc = self.alarm(alarm_id)
        if doc is not None and police_called(doc) and confirm is not True:
            return error(409, "the police have been called to this alarm: confirm to resolve",
                         extra={"needs_confirmation": True})
        return None

    # -- live stream --------------------------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        viewer = self.login.viewer(request)
        if viewer is None:
            raise web.HTTPUnauthorized(reason="not logged in")
        queue = self.feed.subscribe()
        self._streams.add(queue)
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store", "X-Accel-Buffering": "no",
            })
            secure_headers(response, tls=self.secure)
            await response.prepare(request)
            snapshot = await self.feed.snapshot()
            snapshot["user"] = viewer.session.name if viewer.session else None
            snapshot["role"] = str(viewer.role)
            await response.write(b"retry: 1000\n\n" + sse("snapshot", _json(snapshot)))
            await self._relay(queue, response, viewer)
        except ConnectionError:
            pass  # the page went away; its EventSource reconnects if it still exists
        finally:
            self._streams.discard(queue)
            self.feed.unsubscribe(queue)
        return response

    async def _relay(self, queue: asyncio.Queue[Message | None], response: web.StreamResponse,
                     viewer: Viewer) -> None:
        sessions = self.auth.sessions
        while True:
            wait = PING_EVERY_S
            if viewer.session is not None:
                wait = min(wait, sessions.remaining_s(viewer.session))
            try:
                async with asyncio.timeout(max(wait, 0.01)):  # not wait_for (gateway.mqtt.link)
                    message = await queue.get()
            except TimeoutError:
                message = ("ping", _json(self.feed.clock_message()))
            if viewer.session is not None and not sessions.alive(viewer.session):
                await response.write(sse("expired", "{}"))
                return
            if message is None:
                return
            await response.write(sse(*message))

    async def _end_streams(self, app: web.Application) -> None:
        for queue in list(self._streams):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


def police_called(doc: dict[str, Any]) -> bool:
    """The police have been (or are being) called to this alarm and have not been told it
    is over: ``escalated``/``police_acknowledged``, or an escalation under way."""
    if doc.get("state") in ("escalated", "police_acknowledged"):
        return True
    return any(e.get("status") not in (EntryStatus.SUPERSEDED, EntryStatus.STANDBY,
                                       EntryStatus.FAILED)
               for e in doc.get("escalations") or [])


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
