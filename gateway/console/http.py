"""Small HTTP helpers shared by the console's routes: JSON bodies and errors, server-sent
event framing, and the security headers every answer carries."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

MAX_BODY = 16 * 1024  # bytes: a login or a command with a note is far smaller

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or 413 / 415 / 400 with the reason."""
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


def error(status: int, message: str, *, retry_after: int | None = None,
          extra: dict[str, Any] | None = None) -> web.Response:
    """``{"ok": false, "error": message, ...}`` with ``status``."""
    response = web.json_response({"ok": False, "error": message, **(extra or {})},
                                 status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def sse(name: str, data: str) -> bytes:
    """One server-sent event."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


def secure_headers(response: web.StreamResponse, *, tls: bool) -> None:
    """Security headers for every answer (HSTS only over TLS)."""
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cache-Control", "no-store")
    if tls:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
