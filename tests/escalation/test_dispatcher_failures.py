"""An escalation job that fails is never a silent "being sent" for ever: the dispatcher
ends (the supervisor stops the gateway, systemd restarts it) and its cursor stays before
the plan, so the restarted gateway replays the delivery."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from alarms.alarm_helpers import Harness, site

from gateway.core.errors import JournalError
from gateway.core.events import Event, EventDraft, EventType
from gateway.escalation.dispatcher import CONSUMER, Dispatcher, JobFailed
from gateway.journal.store import Batch, Journal


class FullDisk:
    """An event sink whose journal refuses every write, as a full or failing disk does."""

    def __init__(self) -> None:
        self.refused: list[EventDraft] = []

    async def record(self, draft: EventDraft) -> Event:
        self.refused.append(draft)
        raise JournalError("journal commit failed: database or disk is full")


def test_a_job_that_cannot_journal_its_attempt_stops_the_dispatcher(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(site(tmp_path, policy={"default": "immediate"}))
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    (plan,) = h.plans()
    event = {"id": str(uuid.uuid4()), "ts": "2026-11-24T00:00:00.000Z", "_ts": 1.0,
             "site": "bv", "type": "alarm_state", "device": "er-1", "value": 0, "drill": False,
             "alarm_id": plan["alarms"][0], "detail": {"state": "raised", "escalation": plan}}
    sink = FullDisk()

    async def scenario() -> tuple[BaseException | None, int]:
        journal = Journal(tmp_path / "j.sqlite3")
        journal.open()
        await journal.start()
        # no channel configured: each delivery journals a "failed" attempt, which the
        # full disk refuses
        dispatcher = Dispatcher(h.config, journal, sink=sink, engine=h.engine, clock=h.clock)
        task = asyncio.create_task(dispatcher.run())
        try:
            await journal.commit(Batch(events=[event]))
            done, _ = await asyncio.wait({task}, timeout=10)
            failure = task.exception() if done else None
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            position = journal.cursor(CONSUMER)
            await journal.stop()
            journal.close()
        return failure, position

    with caplog.at_level(logging.ERROR):
        failure, position = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert isinstance(failure, JobFailed), "the dispatcher went on as if delivered"
    assert "disk is full" in str(failure) and "replays" in str(failure)
    assert sink.refused and sink.refused[0].type == EventType.ESCALATION_ATTEMPT
    assert position == 0, "the cursor passed a plan whose delivery was never journaled"
    assert any("escalation_job_failed" in r.getMessage() for r in caplog.records)
