"""Fans the receiver's changes out to every open wall screen (server-sent events).

Each page has a bounded queue; a page that stops reading (a stalled browser) is dropped and
its EventSource reconnects to a fresh snapshot, so nothing it shows is ever stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
Message = tuple[str, str]  # (SSE event name, JSON text)


class Feed:
    """Subscribers' queues; :meth:`publish` never blocks the caller."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[Message | None]] = set()
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[Message | None]:
        queue: asyncio.Queue[Message | None] = asyncio.Queue(QUEUE_SIZE)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message | None]) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if not self._clients:
            return
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        for queue in list(self._clients):
            try:
                queue.put_nowait((name, text))
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("event=screen_client_dropped reason=queue_full")
                self._clients.discard(queue)
                end(queue)

    def close(self) -> None:
        """End every page's stream (the receiver is stopping)."""
        for queue in list(self._clients):
            end(queue)
        self._clients.clear()


def end(queue: asyncio.Queue[Message | None]) -> None:
    """Tell a page's stream to end, even if its queue is full."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
