"""Where alarms come into the receiver, whatever carries them.

An alarm source (the HTTP hotline in :mod:`receiver.api`; a DC-09 listener later) verifies
its input, turns it into an :class:`~receiver.model.IncomingAlarm` and calls
:meth:`Intake.accept`, which counts it as a sign of life of the site, commits it once per key
and rings the wall screen; only after it returns may the source answer "received".
What a source refuses goes to :meth:`Intake.refuse`: counted, logged, and journaled (at most
:data:`JOURNAL_REFUSALS_PER_MIN` a minute, so a flood cannot fill the disk).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from gateway.core.errors import JournalError
from gateway.core.ports import Clock
from receiver.desk import Desk
from receiver.links import Links
from receiver.model import Accepted, IncomingAlarm, Refusal
from receiver.store import Batch, Store

log = logging.getLogger(__name__)

JOURNAL_REFUSALS_PER_MIN = 60


class AlarmIntake(Protocol):
    """What an alarm source needs of the receiver."""

    async def accept(self, alarm: IncomingAlarm) -> Accepted: ...

    def heard(self, site: str) -> None: ...

    async def refuse(self, refusal: Refusal) -> None: ...


class Intake:
    """The receiver's :class:`AlarmIntake`."""

    def __init__(self, desk: Desk, links: Links, store: Store, clock: Clock) -> None:
        self._desk = desk
        self._links = links
        self._store = store
        self._clock = clock
        self.refusals: Counter[int] = Counter()
        self.unjournaled = 0
        self._window: list[float] = []

    async def accept(self, alarm: IncomingAlarm) -> Accepted:
        """Commit ``alarm`` (once per site, source and key) and show it; raises
        :class:`~gateway.core.errors.JournalError` when it could not be stored."""
        self._links.heard(alarm.site)
        return await self._desk.accept(alarm)

    def heard(self, site: str) -> None:
        """A verified message from ``site`` that is not an alarm (an ack poll, a link test)."""
        self._links.heard(site)

    async def refuse(self, refusal: Refusal) -> None:
        """Count, log and (rate permitting) journal a refusal; returns once it is stored."""
        self.refusals[refusal.status] += 1
        log.warning("event=request_refused status=%d site=%s remote=%s reason=%r",
                    refusal.status, refusal.site, refusal.remote, refusal.reason)
        now = self._clock.monotonic()
        self._window = [t for t in self._window if now - t < 60.0]
        if len(self._window) >= JOURNAL_REFUSALS_PER_MIN:
            self.unjournaled += 1
            return
        self._window.append(now)
        batch = Batch()
        self._store.event(batch, self._clock.wall(), "refused", refusal.site, refusal.to_dict())
        try:
            await self._store.queue(batch)
        except JournalError as exc:  # the refusal stands; only its record is missing
            log.error("event=refusal_not_journaled error=%r", str(exc))

    def health(self) -> dict[str, object]:
        return {"received": self._desk.received, "duplicates": self._desk.duplicates,
                "refused": sum(self.refusals.values()), "refused_unjournaled": self.unjournaled}
