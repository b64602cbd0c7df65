"""The gateways' HTTP surface (SPEC §6): ``POST /v1/alarms`` and ``GET /v1/acks``.

Every request is checked the same way: the claimed site must be configured, the
``X-Alarm-Timestamp`` within ``max_skew_s`` of now, the ``X-Alarm-Signature`` the HMAC of
that site's own secret. A refusal is a 4xx with a one-line JSON reason
(``{"received": false, "error": …}``) and is journaled; nothing refused is ever stored as an
alarm. A store failure is a 503: the gateway retries, the alarm is not lost.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from gateway.core.errors import JournalError
from gateway.core.ports import Clock
from gateway.escalation.wire import (
    ACKS_PATH,
    EscalationRequest,
    get_signing_bytes,
    verify_signature,
)
from receiver.acks import AckBoard
from receiver.config import ReceiverConfig
from receiver.intake import AlarmIntake
from receiver.model import IncomingAlarm, Refusal

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes: an alarm body is about 1 KiB
ALARMS_PATH = "/v1/alarms"
_INT = re.compile(r"[0-9]{1,18}")


class _Refused(Exception):
    def __init__(self, status: int, reason: str, site: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.site, self.key = status, reason, site, key


class GatewayApi:
    """The aiohttp handlers; :meth:`routes` adds them to an application."""

    def __init__(self, config: ReceiverConfig, intake: AlarmIntake, acks: AckBoard,
                 clock: Clock) -> None:
        self._config = config
        self._intake = intake
        self._acks = acks
        self._clock = clock
        self._secrets = {s.id: config.secret(s) for s in config.sites}

    def routes(self, app: web.Application) -> None:
        app.router.add_post(ALARMS_PATH, self.post_alarm)
        app.router.add_get(ACKS_PATH, self.get_acks)

    # -- POST /v1/alarms --------------------------------------------------------------------
    async def post_alarm(self, request: web.Request) -> web.StreamResponse:
        try:
            alarm = await self._verified_alarm(request)
        except _Refused as refused:
            return await self._refuse(request, refused)
        try:
            accepted = await self._intake.accept(alarm)
        except JournalError as exc:
            log.error("event=alarm_not_stored site=%s key=%s error=%r", alarm.site, alarm.key,
                      str(exc))
            return _json(503, {"received": False, "error": "cannot store the alarm now; retry"})
        return _json(200, {"received": True, "ref": accepted.ref})

    async def _verified_alarm(self, request: web.Request) -> IncomingAlarm:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise _Refused(413, f"body over {MAX_BODY} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Refused(413, f"body over {MAX_BODY} bytes") from None
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Refused(400, "body is not valid UTF-8 JSON") from None
        site_id = _site_of(body)
        if site_id is None:
            raise _Refused(400, "body has no site.id")
        key = request.headers.get("Idempotency-Key")
        self._check_signature(request, site_id, raw, key)
        if not key or key != body.get("escalation_id"):
            raise _Refused(400, "Idempotency-Key must equal escalation_id", site_id, key)
        try:
            escalation = EscalationRequest.from_dict(body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Refused(400, f"body does not follow SPEC §4: {type(exc).__name__}: {exc}"[:200],
                           site_id, key) from None
        return IncomingAlarm.from_request(escalation)

    # -- GET /v1/acks -----------------------------------------------------------------------
    async def get_acks(self, request: web.Request) -> web.StreamResponse:
        try:
            site, after, wait_s = self._verified_poll(request)
        except _Refused as refused:
            return await self._refuse(request, refused)
        self._intake.heard(site)
        try:
            page = await self._acks.wait(site, after, wait_s)
        except JournalError as exc:
            log.error("event=acks_not_read site=%s error=%r", site, str(exc))
            return _json(503, {"error": "cannot read acknowledgements now; retry"})
        return web.Response(body=page.to_body(), content_type="application/json",
                            charset="utf-8", headers={"Cache-Control": "no-store"})

    def _verified_poll(self, request: web.Request) -> tuple[str, int, int]:
        query = request.rel_url.query
        site = query.get("site")
        if not site:
            raise _Refused(400, "query has no site")
        self._check_signature(request, site, get_signing_bytes(request.raw_path), None)
        after, wait = query.get("after", "0"), query.get("wait", "0")
        if not _INT.fullmatch(after) or not _INT.fullmatch(wait):
            raise _Refused(400, "after and wait must be whole numbers >= 0", site)
        return site, int(after), min(int(wait), self._config.receiver.max_wait_s)

    # -- shared -----------------------------------------------------------------------------
    def _check_signature(self, request: web.Request, site: str, signed: bytes,
                         key: str | None) -> None:
        secret = self._secrets.get(site)
        if secret is None:
            raise _Refused(403, f"unknown site {site[:64]!r}", site[:64], key)
        problem = verify_signature(secret, request.headers.get("X-Alarm-Timestamp"),
                                   request.headers.get("X-Alarm-Signature"), signed,
                                   self._clock.wall(), self._config.receiver.max_skew_s)
        if problem is not None:
            raise _Refused(401, problem, site, key)

    async def _refuse(self, request: web.Request, refused: _Refused) -> web.Response:
        await self._intake.refuse(Refusal(refused.status, refused.reason, request.remote or "?",
                                    refused.site, request.path[:200], refused.key))
        return _json(refused.status, {"received": False, "error": refused.reason})


def _site_of(body: Any) -> str | None:
    site = body.get("site") if isinstance(body, dict) else None
    value = site.get("id") if isinstance(site, dict) else None
    return value if isinstance(value, str) and value else None


def _json(status: int, doc: dict[str, Any]) -> web.Response:
    return web.Response(status=status, content_type="application/json", charset="utf-8",
                        text=json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
                        headers={"Cache-Control": "no-store"})
