"""Path supervision (SPEC §6): a site silent for its supervision time is "mất liên lạc".

Every authenticated request from a site's gateway (an alarm, a periodic test report, an ack
poll) is a sign of life (:meth:`Links.heard`). A task checks once a second; a site silent
past ``supervision_s`` is journaled ``link_lost`` and shown lost with a sound; its next
request journals ``link_restored``. Silence is measured on the monotonic clock from the later
of the last request and this receiver's own start, so a receiver restart does not blame the
sites for its own downtime. The link state is stored, so a lost site stays lost across a
restart until it speaks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from gateway.core.clock import rfc3339
from gateway.core.ports import Clock
from receiver.config import ReceiverConfig
from receiver.feed import Feed
from receiver.model import LinkState
from receiver.store import Batch, Store

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
SAVE_EVERY_S = 30.0  # last-seen times are written at most this often per site (s)


@dataclass
class _Link:
    state: LinkState
    last_seen_wall: float | None  # unix s of the last request, for the screen
    last_seen_mono: float  # monotonic s, for the supervision arithmetic
    saved_at: float = 0.0  # monotonic s when last_seen was last stored
    noted_by: str | None = None  # the officer who acknowledged the loss
    changing: bool = False


class Links:
    """Each configured site's link; ``run()`` is the supervision task."""

    def __init__(self, config: ReceiverConfig, store: Store, feed: Feed, clock: Clock) -> None:
        self._config = config
        self._store = store
        self._feed = feed
        self._clock = clock
        self._links: dict[str, _Link] = {}

    def load(self) -> None:
        stored = {r[0]: r for r in self._store.rows(
            "SELECT id, last_seen, link, noted_by FROM sites")}
        start = self._clock.monotonic()
        for site in self._config.sites:
            row = stored.get(site.id)
            state = LinkState(row[2]) if row else LinkState.UNKNOWN
            self._links[site.id] = _Link(state, row[1] if row else None, start,
                                         noted_by=row[3] if row else None)

    # -- signs of life ----------------------------------------------------------------------
    def heard(self, site: str) -> None:
        """A verified request from ``site`` arrived now."""
        link = self._links.get(site)
        if link is None:
            return
        link.last_seen_mono = self._clock.monotonic()
        link.last_seen_wall = self._clock.wall()
        if link.state != LinkState.OK and not link.changing:
            link.changing = True
            asyncio.get_running_loop().create_task(self._change(site, LinkState.OK))
        elif link.last_seen_mono - link.saved_at >= SAVE_EVERY_S:
            link.saved_at = link.last_seen_mono
            self._store.queue(self._row(site, link, link.state, link.noted_by))

    # -- supervision ------------------------------------------------------------------------
    async def run(self) -> None:
        """Until cancelled: mark silent sites lost."""
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            await self.check()

    async def check(self) -> None:
        now = self._clock.monotonic()
        for site in self._config.sites:
            link = self._links[site.id]
            if link.state != LinkState.LOST and not link.changing \
                    and now - link.last_seen_mono > site.supervision_s:
                link.changing = True
                await self._change(site.id, LinkState.LOST)

    async def note(self, site: str, officer: str) -> bool:
        """An officer acknowledges a lost link (the sound stops); False if not lost."""
        link = self._links.get(site)
        if link is None or link.state != LinkState.LOST:
            return False
        link.noted_by = officer
        batch = self._row(site, link, link.state, officer)
        self._store.event(batch, self._clock.wall(), "link_noted", site, {"by": officer})
        await self._store.queue(batch)
        self._feed.publish("site", self.document(site))
        return True

    async def _change(self, site: str, state: LinkState) -> None:
        link = self._links[site]
        before = link.state
        try:
            now = self._clock.wall()
            batch = self._row(site, link, state, None)
            if state == LinkState.LOST or before == LinkState.LOST:
                kind = "link_lost" if state == LinkState.LOST else "link_restored"
                silent = None if link.last_seen_wall is None else round(now - link.last_seen_wall)
                self._store.event(batch, now, kind, site, {"silent_s": silent})
                log.warning("event=%s site=%s silent_s=%s", kind, site, silent)
            await self._store.queue(batch)
            link.state, link.noted_by = state, None
            link.saved_at = self._clock.monotonic()
        finally:
            link.changing = False
        self._feed.publish("site", self.document(site))
        if before == LinkState.LOST or state == LinkState.LOST:
            self._feed.publish("event", {"ts": rfc3339(now), "type": (
                "link_lost" if state == LinkState.LOST else "link_restored"), "site": site})

    def _row(self, site: str, link: _Link, state: LinkState, noted_by: str | None) -> Batch:
        return Batch().add(
            "INSERT INTO sites(id, last_seen, link, noted_by) VALUES (?,?,?,?) ON CONFLICT(id) "
            "DO UPDATE SET last_seen=excluded.last_seen, link=excluded.link, "
            "noted_by=excluded.noted_by", site, link.last_seen_wall, str(state), noted_by)

    # -- views ------------------------------------------------------------------------------
    def state(self, site: str) -> LinkState:
        return self._links[site].state

    def document(self, site_id: str) -> dict[str, Any]:
        site = self._config.site(site_id)
        link = self._links[site_id]
        return {"id": site_id, "name": site.name if site else site_id,
                "address": site.address if site else "", "phone": site.phone if site else "",
                "supervision_s": site.supervision_s if site else None,
                "link": str(link.state), "noted_by": link.noted_by,
                "last_seen": rfc3339(link.last_seen_wall) if link.last_seen_wall else None}

    def documents(self) -> list[dict[str, Any]]:
        return [self.document(s.id) for s in self._config.sites]

    def health(self) -> dict[str, int]:
        states = [link.state for link in self._links.values()]
        return {str(s): states.count(s) for s in LinkState}
