"""Escalation plans are typed inside the gateway and JSON only in the journal: a journaled
plan reads back as the same plan, and one that cannot be read is reported, not skipped
silently."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

import pytest
from waiting import apoll_until

from alarms.alarm_helpers import Harness, site
from gateway.alarms.plan import Plan
from gateway.core.enums import Channel, DeliveryMode
from gateway.core.events import EventDraft, EventType
from gateway.escalation.dispatcher import Dispatcher
from gateway.journal.store import Batch, Journal


def decided(tmp_path: Path, **policy: object) -> tuple[Harness, dict]:  # type: ignore[type-arg]
    h = Harness(site(tmp_path, policy={"default": "immediate", **policy}))
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    (journaled,) = h.plans()
    return h, journaled


@pytest.mark.parametrize("delivery", ["dual", "fallback"])
def test_a_journaled_plan_reads_back_as_the_same_plan(tmp_path: Path, delivery: str) -> None:
    _, journaled = decided(tmp_path, delivery=delivery)
    plan = Plan.from_json(json.loads(json.dumps(journaled)))  # as the journal stores it
    assert plan.to_json() == journaled
    assert plan.delivery is DeliveryMode(delivery) and plan.alarm.type == "panic"
    assert [d.channel for d in plan.deliveries] == [Channel.HTTP, Channel.SMS, Channel.SMS]
    assert plan.alarms == (plan.alarm.id,) and not plan.replayed


@pytest.mark.parametrize("broken", [
    {"deliveries": [{"channel": "carrier-pigeon", "escalation_id": "x", "target": "y"}]},
    {"delivery": "sometimes"},
    {"alarm": None},
    {"round": "first"},
    {"key": None, "alarms": None},
])
def test_a_plan_that_cannot_be_read_is_reported_and_counted(
    tmp_path: Path, broken: dict, caplog: pytest.LogCaptureFixture,  # type: ignore[type-arg]
) -> None:
    h, journaled = decided(tmp_path)
    bad = {**journaled, **broken}
    event = {"id": str(uuid.uuid4()), "ts": "2026-11-24T00:00:00.000Z", "_ts": 1.0,
             "site": "bv", "type": "alarm_state", "device": "er-1", "value": 0, "drill": False,
             "alarm_id": journaled["alarms"][0], "detail": {"state": "raised", "escalation": bad}}

    async def scenario() -> Dispatcher:
        journal = Journal(tmp_path / "j.sqlite3")
        journal.open()
        await journal.start()
        dispatcher = Dispatcher(h.config, journal, sink=None, engine=h.engine,  # type: ignore[arg-type]
                                clock=h.clock)
        task = asyncio.create_task(dispatcher.run())
        try:
            await journal.commit(Batch(events=[event]))
            await apoll_until(lambda: dispatcher.unreadable, 5, what="the plan reported")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await journal.stop()
            journal.close()
        return dispatcher

    with caplog.at_level(logging.ERROR):
        dispatcher = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert dispatcher.health()["unreadable_plans"] == 1
    assert dispatcher.health()["escalations_in_flight"] == 0
    assert any("escalation_plan_unreadable" in r.getMessage() for r in caplog.records)
