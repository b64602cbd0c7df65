"""The ack long-poll: what the police did at a receiver, brought back to this gateway.

For each police receiver with ``acks`` on, one task keeps one signed
``GET <base>/v1/acks?site=<id>&after=<cursor>&wait=<s>`` open (SPEC §6): the answer comes as
soon as an officer acts, or after ``wait`` seconds, and the next poll goes out at once, so the
receiver also sees this site alive. Each ack becomes a ``police_ack`` event; the alarm engine
applies it (``police_acknowledged`` like an SMS ``OK <code>``, ``on_scene`` and ``closed`` in
the history). The receiver's cursor is stored in the journal's kv (``acks:<receiver id>``) in
the same transaction as the events it covers, so a restart at any moment neither misses an
ack nor applies one twice. A failing receiver is retried with capped, jittered backoff and is
a ``trouble`` (``receiver:<id>``) after :data:`TROUBLE_AFTER` failures in a row.

The poll uses aiohttp (not requests in a thread): a poll held open for ``wait`` seconds must
end at once when the gateway stops.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway.core.clock import rfc3339
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock
from gateway.escalation.wire import AckPage, acks_path_qs, signed_get_headers

if TYPE_CHECKING:  # aiohttp is imported by the poller that runs, not by every gateway
    import aiohttp

log = logging.getLogger(__name__)

CURSOR_KEY = "acks:"  # + receiver id: the journal kv holding that receiver's ack cursor
MAX_PAGE_BYTES = 1024 * 1024
TROUBLE_AFTER = 3  # failed polls in a row before a trouble event
BACKOFF_S = (1.0, 60.0)  # first and longest pause between failed polls (s)

Commit = Callable[[list[EventDraft], dict[str, Any]], Awaitable[None]]
"""Records drafts and stores kv entries in one transaction."""
Trouble = Callable[[str, str | None], Awaitable[None]]
"""``(source, reason)``: a trouble raised; ``reason`` None clears it."""


class PollError(Exception):
    """One poll failed; the message is one line."""


@dataclass(frozen=True, slots=True)
class AckSource:
    """Where and as whom to poll: the receiver's id and POST URL (``…/v1/alarms``), this
    site's id, the shared secret, and how long each poll may wait (s)."""

    receiver: str
    url: str
    site: str
    secret: bytes
    wait_s: int = 25

    def origin_and_base(self) -> tuple[str, str]:
        """``("https://host:port", "/police")`` for ``https://host:port/police/v1/alarms``."""
        parts = urlsplit(self.url)
        base = parts.path.rstrip("/").removesuffix("/v1/alarms")
        return f"{parts.scheme}://{parts.netloc}", base


class AckPoller:
    """Polls one receiver until cancelled. ``cursor`` is the stored position to resume from."""

    def __init__(self, source: AckSource, cursor: int, commit: Commit, trouble: Trouble,
                 clock: Clock, ssl_context: ssl.SSLContext | None = None, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        self.source = source
        self.cursor = cursor
        self._commit = commit
        self._trouble = trouble
        self._clock = clock
        self._ssl = ssl_context
        self._sleep = sleep
        self._rand = rand
        self.failures = 0
        self.applied = 0
        self.last_error: str | None = None
        self.last_ok: str | None = None

    async def run(self) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=self.source.wait_s + 15)
        connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector,
                                         trust_env=False) as session:
            while True:
                try:
                    page = await self.poll(session)
                except PollError as exc:
                    await self._failed(str(exc))
                    continue
                await self._succeeded()
                await self.apply(page)

    async def poll(self, session: aiohttp.ClientSession) -> AckPage:
        """One signed poll; raises :class:`PollError` for anything but a valid page."""
        origin, base = self.source.origin_and_base()
        path = acks_path_qs(self.source.site, self.cursor, self.source.wait_s, base)
        headers = signed_get_headers(self.source.secret, path, int(self._clock.wall()))
        import aiohttp

        try:
            async with session.get(origin + path, headers=headers, allow_redirects=False) as resp:
                raw = await resp.content.read(MAX_PAGE_BYTES)
                if resp.status != 200:
                    text = raw[:200].decode("utf-8", "replace")
                    raise PollError(f"HTTP {resp.status}: {' '.join(text.split())}"[:200])
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise PollError(f"{type(exc).__name__}: {exc}"[:200]) from None
        try:
            return AckPage.from_body(raw)
        except ValueError as exc:
            raise PollError(str(exc)) from None

    async def apply(self, page: AckPage) -> None:
        """Record the page's acks and the new cursor in one commit (nothing if no news)."""
        if not page.acks and page.cursor == self.cursor:
            return
        drafts = [EventDraft(EventType.POLICE_ACK, alarm_id=ack.alarm_id, detail={
            "receiver": self.source.receiver, **ack.to_dict()}) for ack in page.acks]
        await self._commit(drafts, {CURSOR_KEY + self.source.receiver: page.cursor})
        if page.cursor < self.cursor:
            log.warning("event=ack_cursor_reset receiver=%s from=%d to=%d",
                        self.source.receiver, self.cursor, page.cursor)
        self.cursor = page.cursor
        self.applied += len(page.acks)
        for ack in page.acks:
            log.info("event=police_ack receiver=%s alarm=%s state=%s by=%r cursor=%d",
                     self.source.receiver, ack.alarm_id, ack.state, ack.by, ack.cursor)

    async def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        log.warning("event=ack_poll_failed receiver=%s failures=%d error=%r",
                    self.source.receiver, self.failures, reason)
        if self.failures == TROUBLE_AFTER:
            await self._trouble(f"receiver:{self.source.receiver}",
                                f"police receiver acks: {reason}")
        ceiling = min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** min(self.failures - 1, 16))
        await self._sleep(ceiling * (0.5 + 0.5 * self._rand()))

    async def _succeeded(self) -> None:
        if self.failures >= TROUBLE_AFTER:
            await self._trouble(f"receiver:{self.source.receiver}", None)
        self.failures = 0
        self.last_error = None
        self.last_ok = rfc3339(self._clock.wall())

    def health(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "applied": self.applied, "failures": self.failures,
                "last_ok": self.last_ok, "error": self.last_error}
