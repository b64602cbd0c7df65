"""``gateway/health``: what a technician (or a city operations centre) needs to trust the box.

Published retained at least every ``health.interval_s`` seconds (SPEC says at least every
60 s). Each part of the gateway contributes a small dict through a provider callable, so
this module knows the shape of the document, not the parts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import __version__
from gateway.clock import rfc3339
from gateway.journal import Journal
from gateway.ports import Clock

log = logging.getLogger(__name__)

Provider = Callable[[], dict[str, Any]]


class HealthReporter:
    def __init__(self, journal: Journal, clock: Clock, storage: str, interval_s: float) -> None:
        self._journal = journal
        self._clock = clock
        self._storage = storage
        self._interval_s = interval_s
        self._providers: dict[str, Provider] = {}
        self._started = clock.monotonic()
        self._consumers: list[str] = []
        self.last: dict[str, Any] = {}

    def add(self, name: str, provider: Provider) -> None:
        self._providers[name] = provider

    def watch_consumer(self, name: str) -> None:
        """Report backlog for this journal consumer (``mqtt``, ``escalation``)."""
        self._consumers.append(name)

    def document(self) -> dict[str, Any]:
        now = self._clock.wall()
        doc: dict[str, Any] = {
            "version": __version__,
            "ts": rfc3339(now),
            "uptime_s": round(self._clock.monotonic() - self._started, 1),
            "journal": self._journal_part(now),
            "disk_free_mb": self._disk_free_mb(),
        }
        for name, provider in self._providers.items():
            try:
                doc[name] = provider()
            except Exception as exc:  # a broken provider must not hide the rest
                doc[name] = {"error": str(exc)}
        self.last = doc
        return doc

    def _journal_part(self, now: float) -> dict[str, Any]:
        part: dict[str, Any] = {"last_seq": self._journal.last_seq}
        for name in self._consumers:
            count, oldest = self._journal.backlog(name)
            part[name] = {
                "backlog": count,
                "oldest_undelivered_age_s": round(now - oldest, 1) if oldest else 0,
            }
        return part

    def _disk_free_mb(self) -> int | None:
        try:
            return shutil.disk_usage(self._storage).free // (1024 * 1024)
        except OSError:
            return None

    async def run(self, publish: Callable[[str], Awaitable[bool]]) -> None:
        """Publish the document every interval (retrying each second while the broker is
        away, so a reconnect gets a fresh document at once), until cancelled."""
        while True:
            delivered = False
            try:
                delivered = await publish(json.dumps(self.document(), ensure_ascii=False))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=health_failed")
            await asyncio.sleep(self._interval_s if delivered else 1.0)
