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
from waiting import apoll_until

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


class Modem:
    """A modem that sends: the answer goes out, its journaling is what fails."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_sms(self, number: str, text: str) -> list[int]:
        self.sent.append((number, text))
        return [1]


def test_an_answer_that_fails_is_counted_and_the_dispatcher_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An answer to a police reply is a courtesy, not a delivery owed: its failure is
    logged and counted, and never stops the gateway (on replay it would again and again)."""
    h = Harness(site(tmp_path, policy={"default": "immediate"}))
    number = h.config.escalation.sms.numbers[0]  # type: ignore[union-attr]
    reply = {"id": str(uuid.uuid4()), "ts": "2026-11-24T00:00:00.000Z", "_ts": 1.0,
             "site": "bv", "type": "police_reply", "device": None, "value": 0, "drill": False,
             "alarm_id": None, "detail": {"from": number, "text": "OK 9999", "code": "9999",
                                          "authorised": True}}
    modem = Modem()

    async def scenario() -> tuple[bool, int, int]:
        journal = Journal(tmp_path / "j.sqlite3")
        journal.open()
        await journal.start()
        dispatcher = Dispatcher(h.config, journal, sink=FullDisk(), engine=h.engine,
                                clock=h.clock, sms=modem)
        task = asyncio.create_task(dispatcher.run())
        try:
            await journal.commit(Batch(events=[reply]))
            await apoll_until(lambda: dispatcher.answers_failed, 5, what="the failed answer")
            await apoll_until(lambda: journal.cursor(CONSUMER) >= 1, 5, what="the cursor")
            running = not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            position = journal.cursor(CONSUMER)
            await journal.stop()
            journal.close()
        return running, dispatcher.health()["answers_failed"], position

    with caplog.at_level(logging.ERROR):
        running, failed, position = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert running and failed == 1 and position == 1
    assert modem.sent and modem.sent[0][0] == number
    assert any("answer_job_failed" in r.getMessage() for r in caplog.records)
