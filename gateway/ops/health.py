"""``gateway/health``: what a technician (or a city operations centre) needs to trust the box.

Published retained at least every ``health.interval_s`` seconds (SPEC says at least every
60 s). Each part of the gateway contributes a small dict through a provider callable, so
this module knows the shape of the document, not the parts.

:class:`HealthLimits` reads a document against the ``[health]`` limits (disk free, journal
backlog, hotline failures in a row) and says which troubles are on; :class:`TroubleLatch`
turns that into edges, so a ``trouble`` / ``trouble_cleared`` event is recorded once per
crossing, not every interval. Both are sans-I/O; the wiring is in :mod:`gateway.features.operations`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway import __version__
from gateway.core.clock import rfc3339
from gateway.core.ports import Clock
from gateway.journal.store import Journal

log = logging.getLogger(__name__)

Provider = Callable[[], dict[str, Any]]
Observer = Callable[[dict[str, Any]], Awaitable[None]]


class HealthReporter:
    """Publishes ``gateway/health`` every ``interval_s`` from the registered providers."""

    def __init__(self, journal: Journal, clock: Clock, storage: str, interval_s: float) -> None:
        self._journal = journal
        self._clock = clock
        self._storage = storage
        self._interval_s = interval_s
        self._providers: dict[str, Provider] = {}
        self._started = clock.monotonic()
        self._consumers: list[str] = []
        self._observers: list[Observer] = []
        self.last: dict[str, Any] = {}

    def add(self, name: str, provider: Provider) -> None:
        self._providers[name] = provider

    def observe(self, observer: Observer) -> None:
        """``await observer(document)`` after each document :meth:`run` builds, whether or
        not the broker took it (trouble detection must not depend on the broker)."""
        self._observers.append(observer)

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
                doc = self.document()
                delivered = await publish(json.dumps(doc, ensure_ascii=False))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=health_failed")
            else:
                await self._notify(doc)
            await asyncio.sleep(self._interval_s if delivered else 1.0)

    async def _notify(self, doc: dict[str, Any]) -> None:
        for observer in self._observers:
            try:
                await observer(doc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=health_observer_failed")


@dataclass(frozen=True)
class HealthLimits:
    """The ``[health]`` limits. A trouble is on when disk free is under ``disk_free_min_mb``,
    a journal consumer's backlog is over ``backlog_max`` events, or the hotline has failed
    ``hotline_failures_max`` times in a row. Disk and backlog clear with a margin
    (hysteresis) so a value hovering at the limit does not flap."""

    disk_free_min_mb: int
    backlog_max: int
    hotline_failures_max: int

    @classmethod
    def from_config(cls, health: Any) -> HealthLimits:
        return cls(health.disk_free_min_mb, health.backlog_max, health.hotline_failures_max)

    def check(self, doc: dict[str, Any], active: set[str]) -> dict[str, dict[str, Any] | None]:
        """Each trouble key this document says something about: its detail when on, None
        when off. Keys the document cannot judge (no hotline part, disk unknown) are absent,
        so their state is kept. ``active`` is what is on now (for the clear margins)."""
        out: dict[str, dict[str, Any] | None] = {}
        self._disk(doc, active, out)
        self._backlog(doc, active, out)
        self._hotline(doc, out)
        return out

    def _disk(self, doc: dict[str, Any], active: set[str], out: dict[str, Any]) -> None:
        free = doc.get("disk_free_mb")
        if not isinstance(free, int):
            return
        margin = max(16, self.disk_free_min_mb // 10) if "disk" in active else 0
        on = free < self.disk_free_min_mb + margin
        out["disk"] = {"disk_free_mb": free, "limit_mb": self.disk_free_min_mb} if on else None

    def _backlog(self, doc: dict[str, Any], active: set[str], out: dict[str, Any]) -> None:
        journal = doc.get("journal")
        for consumer, part in (journal.items() if isinstance(journal, dict) else ()):
            if not isinstance(part, dict) or not isinstance(part.get("backlog"), int):
                continue
            key = f"backlog:{consumer}"
            limit = self.backlog_max * 9 // 10 if key in active else self.backlog_max
            on = part["backlog"] > limit
            out[key] = {
                "consumer": consumer, "backlog": part["backlog"], "limit": self.backlog_max,
                "oldest_undelivered_age_s": part.get("oldest_undelivered_age_s"),
            } if on else None

    def _hotline(self, doc: dict[str, Any], out: dict[str, Any]) -> None:
        failures = _consecutive_failures(doc.get("hotline"))
        if failures is None:
            return
        on = failures >= self.hotline_failures_max
        out["hotline"] = {"failures": failures, "limit": self.hotline_failures_max} if on else None


def _consecutive_failures(part: Any) -> int | None:
    """``consecutive_failures`` of the hotline part, or the largest among its channels."""
    if not isinstance(part, dict):
        return None
    value = part.get("consecutive_failures")
    if isinstance(value, int):
        return value
    found = [_consecutive_failures(v) for v in part.values() if isinstance(v, dict)]
    numbers = [n for n in found if n is not None]
    return max(numbers) if numbers else None


class TroubleLatch:
    """Edge detection over :meth:`HealthLimits.check`: which troubles turned on or off."""

    def __init__(self) -> None:
        self.active: dict[str, dict[str, Any]] = {}

    def edges(self, check: dict[str, dict[str, Any] | None]) -> list[tuple[str, dict[str, Any] | None]]:
        """``(key, detail)`` for each trouble that turned on (detail) or off (None)."""
        out: list[tuple[str, dict[str, Any] | None]] = []
        for key, detail in check.items():
            if detail is not None and key not in self.active:
                out.append((key, detail))
            elif detail is None and key in self.active:
                out.append((key, None))
        return out

    def settle(self, key: str, detail: dict[str, Any] | None) -> None:
        """Record that the edge for ``key`` was journaled."""
        if detail is None:
            self.active.pop(key, None)
        else:
            self.active[key] = detail
