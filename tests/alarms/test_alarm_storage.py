"""What a restart reads back: each alarm is its retained ``alarm/<id>`` document plus a small
private ``alarm:<id>`` record (the timers, rounds, group and exact times the document does
not carry), both from the journal file; a record in the older whole form still loads."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from alarms.alarm_helpers import Harness, site
from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import Alarm
from gateway.alarms.plan import Plan
from gateway.config.schema import SiteConfig
from gateway.core.clock import ManualClock
from gateway.core.events import EventDraft, EventType
from gateway.journal.store import Batch, Journal

WARD = ["+84901111111", "0902222222"]


def through_a_journal(path: Path, kv: dict[str, Any], retained: dict[str, Any]) -> Journal:
    """``kv`` and ``retained`` committed to a journal file, which is then opened again."""

    async def write() -> None:
        journal = Journal(path)
        journal.open()
        await journal.start()
        try:
            await journal.commit(Batch(kv=kv, retained=retained))
        finally:
            await journal.stop()
            journal.close()

    asyncio.run(write())
    journal = Journal(path)
    journal.open()
    return journal


def restarted(config: SiteConfig, clock: ManualClock, journal: Journal) -> AlarmEngine:
    """The engine as ``gateway.features.alarms`` builds it at start."""
    return AlarmEngine(config, clock, journal.kv_all("alarm:"),
                       documents=journal.retained_all("alarm/"))


def deliver(h: Harness, plan: dict[str, Any]) -> None:
    for d in plan["deliveries"]:
        h.record(EventDraft(EventType.ESCALATION_ATTEMPT, alarm_id=plan["alarms"][0], detail={
            **d, "attempt": 1, "status": "delivered", "will_retry": False,
            "alarms": plan["alarms"], "delivered_at": "2026-01-01T00:00:00.000Z"}))


def mass_with_reminders(tmp_path: Path) -> Harness:
    """A mass group (three presses), delivered, a guard's ack, a reminder round, a police
    reply on one member and a resolve on another; a drill beside it."""
    h = Harness(site(
        tmp_path, policy={"default": "immediate", "mass_alarm": {"count": 3, "window_s": 10}},
        escalation={"sms": {"numbers": WARD},
                    "reminders": {"after_s": 120, "max_rounds": 4}}))
    ids = []
    for device in ("er-1", "b-0", "b-1"):
        ids.append(h.record(EventDraft(EventType.PRESS, device=device))[0].alarm_id)
        h.clock.advance(0.25)
    h.record(EventDraft(EventType.PRESS, device="er-1"))  # press_count 2
    for plan in h.plans():
        deliver(h, plan)
    h.record(h.engine.command_draft(ids[0], "ack", "Bảo vệ Nam", "đã đến", "mqtt"))
    h.clock.advance(120)
    assert h.fire_timers(), "a reminder round"
    assert Plan.from_json(h.plans()[-1]).reason == "reminder"
    first = h.alarm(ids[0])
    h.record(EventDraft(EventType.POLICE_REPLY, detail={
        "from": WARD[0], "text": "ok " + first.code, "code": first.code, "authorised": True}))
    h.record(h.engine.command_draft(ids[2], "resolve", "Bảo vệ Lan", "Báo nhầm", "mqtt"))
    h.record(EventDraft(EventType.PRESS, device="b-2", drill=True))
    return h


def police_timer(tmp_path: Path) -> Harness:
    """A raised alarm whose police timer runs (``escalate_at``), and a duress hold."""
    h = Harness(site(tmp_path, policy={"default": "unacknowledged_after", "after_s": 30}))
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    h.clock.advance(3.125)
    h.record(EventDraft(EventType.HOLD, device="er-2", value=3))
    return h


def test_a_restart_restores_every_field_of_every_alarm(tmp_path: Path) -> None:
    seen: set[str] = set()
    for name, build in (("mass", mass_with_reminders), ("timer", police_timer)):
        (tmp_path / name).mkdir()
        h = build(tmp_path / name)
        journal = through_a_journal(tmp_path / f"{name}.sqlite3", h.kv, h.retained)
        try:
            engine = restarted(h.config, h.clock, journal)
        finally:
            journal.close()
        before = {a.id: a for a in h.engine.open_alarms()} | {
            i: h.alarm(i) for i in (k.removeprefix("alarm:") for k in h.kv if k.startswith("alarm:"))}
        assert before
        for alarm_id, alarm in before.items():
            again = engine.get(alarm_id)
            assert again is not None, alarm_id
            assert asdict(again) == asdict(alarm)
            assert again.document() == h.retained[f"alarm/{alarm_id}"]
            seen |= {f.name for f in fields(Alarm)
                     if getattr(alarm, f.name) not in (None, 0, [], False)}
        # what the engine answers from them is the same too
        assert engine.next_due() == h.engine.next_due()
        assert engine.next_deadline() == h.engine.next_deadline()
        assert engine.led_states() == h.engine.led_states()
    # the scenarios above give every field a value of its own
    assert seen == {f.name for f in fields(Alarm)}


def test_the_private_record_holds_only_what_the_document_lacks(tmp_path: Path) -> None:
    h = mass_with_reminders(tmp_path)
    for key, record in h.kv.items():
        if key.startswith("alarm:"):
            assert set(record) <= {"raised_at", "taken_at", "escalate_at", "remind_at",
                                   "rounds", "group"}
    # a further press changes the document only: the private record is not written again
    alarm_id = h.engine.open_alarms()[0].id
    device = h.alarm(alarm_id).device
    written: list[str] = []
    result = h.engine.process(EventDraft(EventType.PRESS, device=device, ts=h.clock.wall()))
    written += list(result.kv)
    assert f"alarm/{alarm_id}" in result.retained and written == []


def test_an_alarm_record_in_the_older_whole_form_still_loads(tmp_path: Path) -> None:
    h = mass_with_reminders(tmp_path)
    old_kv = {f"alarm:{a.id}": a.to_store() for a in (h.alarm(i) for i in (
        k.removeprefix("alarm:") for k in h.kv if k.startswith("alarm:")))}
    journal = through_a_journal(tmp_path / "old.sqlite3", old_kv, {})  # no document needed
    try:
        engine = restarted(h.config, h.clock, journal)
    finally:
        journal.close()
    for key in old_kv:
        alarm_id = key.removeprefix("alarm:")
        again = engine.get(alarm_id)
        assert again is not None and asdict(again) == asdict(h.alarm(alarm_id))
    # its next change writes the small record, which the next start reads with the document
    h2 = Harness(h.config, h.clock, dict(old_kv), retained=dict(h.retained))
    open_id = h2.engine.open_alarms()[0].id
    h2.record(h2.engine.command_draft(open_id, "ack", "Bảo vệ Minh", "", "mqtt"))
    assert "history" not in h2.kv[f"alarm:{open_id}"]
    assert asdict(h2.restart().alarm(open_id)) == asdict(h2.alarm(open_id))
