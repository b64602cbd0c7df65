"""Who is looking at the console: operators (logged in) and wall screens (display mode).

An *operator* has a session (``sessions``): sees everything and may act. A *display* sees
and hears everything live but may not act: a page from one of ``display_addresses``, or
one that opened ``/display?token=…`` with the token of ``display_token_file`` (it then
holds a cookie derived from that token; changing the token ends every such screen).
Failed logins are counted, logged and journaled as ``login_failed`` events (at most
:data:`JOURNAL_PER_MINUTE` a minute, the rest counted in the next one's ``suppressed``: a
flood of them must not cost the gateway a log line each),
never with the password tried, and with the name only when it is a configured operator's
(a name field sometimes receives a password).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, EventSink

log = logging.getLogger(__name__)

JOURNAL_PER_MINUTE = 10


class Role(StrEnum):
    """Who a page is for: an operator who acts, or a wall display that only shows."""

    OPERATOR = "operator"
    DISPLAY = "display"


class DisplayAccess:
    """Which pages are wall screens: by client address, or by the display token's cookie."""

    def __init__(self, addresses: list[str], token: str | None) -> None:
        self._addresses = {_normal(a) for a in addresses}
        self._token = token or None

    @property
    def enabled(self) -> bool:
        return bool(self._addresses or self._token)

    def by_address(self, remote: str | None) -> bool:
        return bool(remote) and _normal(remote or "") in self._addresses

    def token_ok(self, token: str | None) -> bool:
        if not self._token or not token:
            return False
        return hmac.compare_digest(token.encode(), self._token.encode())

    @property
    def cookie(self) -> str | None:
        """The wall screen's cookie value: derived from the token, never the token."""
        if not self._token:
            return None
        return hmac.new(self._token.encode(), b"console-display", hashlib.sha256).hexdigest()

    def cookie_ok(self, value: str | None) -> bool:
        cookie = self.cookie
        return bool(cookie and value) and hmac.compare_digest(str(value).encode(),
                                                              str(cookie).encode())


def _normal(address: str) -> str:
    """``::ffff:127.0.0.1`` and ``127.0.0.1`` are one address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


@dataclass
class LoginCounters:
    """For ``gateway/health``'s ``console`` part."""

    failed: int = 0
    throttled: int = 0
    busy: int = 0
    succeeded: int = 0


class LoginJournal:
    """Journals failed and refused logins, at most ``per_minute`` a minute; counts all."""

    def __init__(self, sink: EventSink | None, clock: Clock,
                 per_minute: int = JOURNAL_PER_MINUTE) -> None:
        self._sink = sink
        self._clock = clock
        self._per_minute = per_minute
        self._window_start = -1e18
        self._in_window = 0
        self._suppressed = 0
        self.counters = LoginCounters()

    async def refused(self, reason: str, *, user: str | None, address: str,
                      attempts: int) -> None:
        """One failed (``wrong_password``, ``wrong_display_token``) or refused
        (``throttled``, ``busy``) login."""
        field = {"throttled": "throttled", "busy": "busy"}.get(reason, "failed")
        setattr(self.counters, field, getattr(self.counters, field) + 1)
        suppressed = self._admit()
        if suppressed is None:
            return  # counted; the next admitted line says how many were left out
        log.warning("event=console_login_refused reason=%s user=%r address=%s attempts=%d "
                    "suppressed=%d", reason, user, address, attempts, suppressed)
        if self._sink is None:
            return
        detail: dict[str, Any] = {"reason": reason, "user": user, "address": address,
                                  "attempts": attempts, "suppressed": suppressed}
        try:
            await self._sink.record(EventDraft(EventType.LOGIN_FAILED, detail=detail))
        except Exception:  # the journal refused: counted and logged, the console goes on
            log.exception("event=console_login_journal_failed")

    def _admit(self) -> int | None:
        now = self._clock.monotonic()
        if now - self._window_start >= 60.0:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self._per_minute:
            self._suppressed += 1
            return None
        self._in_window += 1
        dropped, self._suppressed = self._suppressed, 0
        return dropped
