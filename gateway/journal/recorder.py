"""The one door into the journal: turns drafts into committed events.

Input sources call :meth:`Recorder.record`; it fills in what the config knows (site, ward,
room, kind), lets each :class:`~gateway.core.ports.EventProcessor` (device state, alarms) see the
event *on the loop, in order*, and commits the event together with everything the processors
derived in one transaction. Only then does ``record`` return, so the caller may ACK.
"""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.clock import rfc3339
from gateway.core.events import Event, EventDraft
from gateway.core.ports import Clock, EventProcessor, ProcessResult
from gateway.journal.store import Batch, Journal

log = logging.getLogger(__name__)

#: event ids need to be unique, not secret: a generator seeded once from the OS costs ~1 µs
#: per id where ``uuid4()`` reads /dev/urandom for each (tens of µs on a small board)
_ids = random.Random(uuid.uuid4().int)


def new_event_id() -> str:
    """A random (version 4) UUID for an event's ``id``."""
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


class Recorder:
    """Implements :class:`~gateway.core.ports.EventSink` over a :class:`Journal`."""

    def __init__(self, config: SiteConfig, journal: Journal, clock: Clock) -> None:
        self._config = config
        self._journal = journal
        self._clock = clock
        self._processors: list[EventProcessor] = []
        self._devices = {d.id: d for d in config.devices}
        self.recorded = 0

    def add_processor(self, processor: EventProcessor) -> None:
        self._processors.append(processor)

    async def record(self, draft: EventDraft) -> Event:
        """Commit ``draft`` (and what processors derive from it); return the committed event."""
        batch, callbacks = self.prepare([draft])
        committed = await self._journal.commit(batch)
        self._after(callbacks)
        return committed.events[0]

    async def record_many(self, drafts: list[EventDraft], *,
                          kv: dict[str, Any] | None = None) -> list[Event]:
        """Commit several drafts in one transaction, in order; ``kv`` entries (e.g. a
        consumer's cursor over what the drafts came from) commit with them."""
        batch, callbacks = self.prepare(drafts)
        batch.kv.update(kv or {})
        committed = await self._journal.commit(batch)
        self._after(callbacks)
        return committed.events

    def prepare(self, drafts: list[EventDraft]) -> tuple[Batch, list[Any]]:
        """Run the processors and build the batch; no I/O (it runs on the loop)."""
        batch = Batch()
        callbacks: list[Any] = []
        pending = list(drafts)
        while pending:
            draft = pending.pop(0)
            if draft.ts is None:
                draft = _with_ts(draft, self._clock.wall())
            for processor in self._processors:
                result: ProcessResult = processor.process(draft)
                draft = result.draft
                batch.retained.update(result.retained)
                batch.kv.update(result.kv)
                callbacks.extend(result.after_commit)
                pending[0:0] = result.follow_ups
            batch.events.append(self._body(draft))
        return batch, callbacks

    def _body(self, draft: EventDraft) -> dict[str, Any]:
        device = self._devices.get(draft.device) if draft.device else None
        assert draft.ts is not None
        body: dict[str, Any] = {
            "id": new_event_id(),
            "ts": rfc3339(draft.ts),
            "_ts": draft.ts,
            "site": self._config.site.id,
            "ward": device.ward if device else None,
            "room": device.room if device else None,
            "device": draft.device,
            "kind": device.kind if device else None,
            "type": str(draft.type),
            "value": draft.value,
            "drill": draft.drill,
            "alarm_id": draft.alarm_id,
        }
        if draft.detail:
            body["detail"] = draft.detail
        return body

    def _after(self, callbacks: list[Any]) -> None:
        self.recorded += 1
        for callback in callbacks:
            try:
                callback()
            except Exception:  # an LED failing must not undo a committed event
                log.exception("event=after_commit_failed")


def _with_ts(draft: EventDraft, ts: float) -> EventDraft:
    return EventDraft(
        type=draft.type,
        device=draft.device,
        value=draft.value,
        drill=draft.drill,
        alarm_id=draft.alarm_id,
        detail=draft.detail,
        ts=ts,
    )
