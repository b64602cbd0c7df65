"""The acknowledgement stream back to each gateway (SPEC §6, ``GET /v1/acks``).

Acks are committed by :class:`~receiver.desk.Desk` with an increasing ``cursor`` shared by
all sites. A poll asks for its site's acks after the cursor it holds; if there are none it
waits (at most ``wait`` seconds) for :meth:`AckBoard.notify`. The answer's ``cursor`` is the
last ack's cursor, or, with no news, the cursor asked for (capped at the highest ack ever
committed, so a gateway whose receiver lost its disk starts over instead of waiting forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from gateway.escalation.wire import MAX_ACKS_PER_PAGE, AckPage, PoliceAck
from receiver.store import Store


class AckBoard:
    """Per-site wake-ups for long polls; reads pages from the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._events: dict[str, asyncio.Event] = {}
        self.waiting = 0

    def notify(self, site: str) -> None:
        """An ack for ``site`` was committed: wake its polls."""
        event = self._events.pop(site, None)
        if event is not None:
            event.set()

    def page(self, site: str, after: int) -> AckPage:
        rows = self._store.rows("SELECT cursor, body FROM acks WHERE site=? AND cursor>? "
                                "ORDER BY cursor LIMIT ?", site, after, MAX_ACKS_PER_PAGE)
        if rows:
            return AckPage(rows[-1][0], tuple(PoliceAck.from_dict(json.loads(b)) for _, b in rows))
        top = self._store.one("SELECT COALESCE(MAX(cursor), 0) FROM acks")
        return AckPage(min(after, int(top[0]) if top else 0))

    async def wait(self, site: str, after: int, wait_s: float) -> AckPage:
        """The next page for ``site`` after ``after``; waits up to ``wait_s`` for news."""
        event = self._events.setdefault(site, asyncio.Event())
        page = self.page(site, after)
        if page.acks or wait_s <= 0:
            return page
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await event.wait()
        finally:
            self.waiting -= 1
        return self.page(site, after)
