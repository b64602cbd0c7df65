"""The SMS reminder ladder (SPEC §4, ``[escalation.reminders]``), sans-I/O: while no police
acknowledgement comes, the alarm goes out again every ``after_s`` as a new round with its
own ids, ``NHẮC LẠI <n>`` to the numbers that had it, and the next tier of numbers joins
every ``rounds_per_tier`` rounds; a police ``OK`` or a resolve stops it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarms.alarm_helpers import Harness, detail, site
from gateway.alarms.engine import AlarmEngine
from gateway.alarms.plan import Plan
from gateway.core.clock import ManualClock
from gateway.core.events import EventDraft, EventType
from gateway.escalation.outbound import Outbound

WARD, DISTRICT = ["+84901111111", "0902222222"], ["0913333333"]


def ladder(tmp_path: Path, *, tiers: bool = True, http: bool = False,
           **reminders: Any) -> Harness:
    hotline = {"http": {"url": "http://127.0.0.1:9/alarm",
                        "secret_file": str(tmp_path / "hotline.secret")}} if http else {}
    return Harness(site(
        tmp_path, policy={"default": "immediate", "mass_alarm": {"count": 3, "window_s": 10}},
        escalation={**hotline, "sms": {"numbers": WARD, "next_tiers": [DISTRICT] if tiers else []},
                    "reminders": {"after_s": 120, "rounds_per_tier": 2, "max_rounds": 4,
                                  **reminders}}))


def plans(h: Harness) -> list[Plan]:
    return [Plan.from_json(p) for p in h.plans()]


def deliver(h: Harness, plan: Plan) -> None:
    """Every delivery of ``plan`` reported delivered, as the dispatcher would."""
    for d in plan.deliveries:
        h.record(EventDraft(EventType.ESCALATION_ATTEMPT, alarm_id=plan.alarms[0], detail={
            **d.to_json(), "attempt": 1, "status": "delivered", "will_retry": False,
            "alarms": list(plan.alarms), "delivered_at": "2026-01-01T00:00:00.000Z"}))


def wait(h: Harness, seconds: float) -> list[EventDraft]:
    h.clock.advance(seconds)
    return h.fire_timers()


def test_the_ladder_reminds_then_adds_the_next_tier_then_stops(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    (first,) = plans(h)
    assert {d.target for d in first.deliveries if d.channel == "sms"} == set(WARD)
    deliver(h, first)
    assert wait(h, 119) == []  # not yet
    wait(h, 1)
    second = plans(h)[-1]
    # a reminder is SMS only (the hotline has the alarm), to the ward police, "reminder 1"
    assert (second.reason, second.round) == ("reminder", 2)
    assert [(d.channel, d.target, d.reminder) for d in second.deliveries] == \
        [("sms", WARD[0], 1), ("sms", WARD[1], 1)]
    assert not {d.escalation_id for d in second.deliveries} & \
        {d.escalation_id for d in first.deliveries}, "a round has its own ids"
    deliver(h, second)
    wait(h, 120)
    third = plans(h)[-1]
    # after rounds_per_tier (2) rounds the district line joins: it hears it the first time
    assert [(d.target, d.reminder) for d in third.deliveries] == \
        [(WARD[0], 2), (WARD[1], 2), (DISTRICT[0], 0)]
    deliver(h, third)
    wait(h, 120)
    fourth = plans(h)[-1]
    assert fourth.round == 4 and [d.reminder for d in fourth.deliveries] == [3, 3, 1]
    deliver(h, fourth)
    assert wait(h, 3600) == [] and len(plans(h)) == 4, "max_rounds = 4 counts the first"
    alarm = h.alarm(first.alarms[0])
    rounds = [e["round"] for e in alarm.history if e.get("action") == "reminder"]
    assert rounds == [2, 3, 4] and alarm.remind_at is None
    # every round is journaled: a command event carrying its plan
    journaled = [detail(e) for e in h.of_type("alarm_state") if detail(e).get("action") == "remind"]
    assert [j["escalation"]["round"] for j in journaled] == [2, 3, 4]
    assert all(j["by"] == "policy:reminder" for j in journaled)


def test_what_each_phone_reads_in_a_round(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    for _ in range(2):
        deliver(h, plans(h)[-1])
        wait(h, 120)
    third = plans(h)[-1]
    out = Outbound(h.config)
    ward, _, district = (out.sms_text(third, d.escalation_id, 1, d.reminder)
                         for d in third.deliveries)
    code = third.alarm.code
    assert ward.startswith("NHẮC LẠI 2: ") and f"OK {code}" in ward
    assert not district.startswith("NHẮC LẠI") and f"OK {code}" in district


def test_a_police_ok_stops_the_ladder(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    deliver(h, plans(h)[-1])
    wait(h, 120)
    alarm = h.alarm(plans(h)[0].alarms[0])
    h.record(EventDraft(EventType.POLICE_REPLY, detail={
        "from": WARD[1], "text": f"OK {alarm.code}", "code": alarm.code, "authorised": True}))
    assert alarm.state == "police_acknowledged" and alarm.remind_at is None
    assert wait(h, 3600) == [] and len(plans(h)) == 2


def test_a_resolve_stops_the_ladder(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    deliver(h, plans(h)[-1])
    alarm = h.alarm(plans(h)[0].alarms[0])
    h.record(h.engine.command_draft(alarm.id, "resolve", "Bảo vệ", "xong", "console"))
    assert wait(h, 3600) == [] and len(plans(h)) == 1


def test_no_reminder_piles_up_behind_a_round_still_on_its_way(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    first = plans(h)[-1]
    assert wait(h, 120) == [] and len(plans(h)) == 1, "the first SMS is not out yet"
    deliver(h, first)
    assert wait(h, 119) == []  # a full period after the postponement
    wait(h, 1)
    assert plans(h)[-1].reason == "reminder"


def test_no_reminder_piles_up_behind_an_sms_the_modem_cannot_send(tmp_path: Path) -> None:
    """The hotline took the alarm but the modem keeps failing: a second round would only
    queue a second SMS behind the first. The ladder waits until the SMS went out."""
    h = ladder(tmp_path, http=True)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    (first,) = plans(h)
    http = next(d for d in first.deliveries if d.channel == "http")
    h.record(EventDraft(EventType.ESCALATION_ATTEMPT, alarm_id=first.alarms[0], detail={
        **http.to_json(), "attempt": 1, "status": "delivered", "will_retry": False,
        "alarms": list(first.alarms), "delivered_at": "2026-01-01T00:00:00.000Z"}))
    alarm = h.alarm(first.alarms[0])
    assert alarm.state == "escalated"
    for d in first.deliveries:
        if d.channel == "sms":
            h.record(EventDraft(EventType.ESCALATION_ATTEMPT, alarm_id=alarm.id, detail={
                **d.to_json(), "attempt": 1, "status": "retrying", "will_retry": True,
                "alarms": [alarm.id], "error": "+CMS ERROR: 500"}))
    assert wait(h, 600) == [] and len(plans(h)) == 1, "the SMS is still owed"
    deliver(h, first)
    wait(h, 120)
    assert plans(h)[-1].reason == "reminder"


def test_the_next_reminder_survives_a_restart(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    deliver(h, plans(h)[-1])
    h.clock.advance(60)
    # a restart 60 s into the wait: the deadline is the stored wall-clock time
    clock = ManualClock(start=5.0, wall_start=h.clock.wall() + 30)  # down for 30 s
    restarted = h.restart(clock)
    assert wait(restarted, 29) == []
    wait(restarted, 1)
    assert [Plan.from_json(p).reason for p in restarted.plans()] == ["reminder"]


def test_reminders_off_send_nothing(tmp_path: Path) -> None:
    h = ladder(tmp_path, tiers=False, after_s=0)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    deliver(h, plans(h)[-1])
    assert wait(h, 3600) == [] and len(plans(h)) == 1
    assert isinstance(h.engine, AlarmEngine) and h.engine.next_due() is None


def test_a_mass_alarm_is_reminded_as_one(tmp_path: Path) -> None:
    h = ladder(tmp_path)
    for device in ("er-1", "b-0", "b-1"):
        h.record(EventDraft(EventType.PRESS, device=device))
    mass = next(p for p in plans(h) if p.mass)
    deliver(h, mass)
    for p in plans(h):
        if not p.mass:
            deliver(h, p)  # the first alarm's own round, before the group formed
    wait(h, 120)
    reminders = [p for p in plans(h) if p.reason == "reminder"]
    assert len(reminders) == 1, "one reminder for the group, not one per alarm"
    (reminder,) = reminders
    assert reminder.mass and reminder.key == mass.key and set(reminder.alarms) == set(mass.alarms)
    assert [d.reminder for d in reminder.deliveries] == [1, 1]
    text = Outbound(h.config).sms_text(reminder, reminder.deliveries[0].escalation_id, 1, 1)
    assert text.startswith("NHẮC LẠI 1: ")
    for alarm_id in mass.alarms:
        assert h.alarm(alarm_id).history[-1]["action"] == "reminder"


def test_a_police_ok_covers_only_the_rooms_the_police_were_told_of(tmp_path: Path) -> None:
    """A mass group forms while the first alarm's own SMS is already out: an officer's OK
    to that SMS acknowledges that alarm, not the rooms whose combined SMS has not reached
    the police yet (their LEDs must not say "police acknowledged"). Once it has, the next
    OK covers them."""
    h = ladder(tmp_path)
    h.record(EventDraft(EventType.PRESS, device="er-1"))
    (first,) = plans(h)
    deliver(h, first)
    for device in ("b-0", "b-1"):
        h.record(EventDraft(EventType.PRESS, device=device))
    mass = next(p for p in plans(h) if p.mass)
    a, b, c = (h.alarm(i) for i in mass.alarms)
    assert a.id == first.alarms[0] and (b.state, c.state) == ("raised", "raised")

    def ok() -> None:
        h.record(EventDraft(EventType.POLICE_REPLY, detail={
            "from": WARD[0], "text": f"OK {a.code}", "code": a.code, "authorised": True}))

    ok()
    assert (a.state, b.state, c.state) == ("police_acknowledged", "raised", "raised")
    deliver(h, mass)
    assert (b.state, c.state) == ("escalated", "escalated")
    assert b.remind_at is not None, "still owed an acknowledgement: the ladder runs"
    ok()
    assert (b.state, c.state) == ("police_acknowledged", "police_acknowledged")
    assert b.remind_at is None and c.remind_at is None
    replies = h.of_type("police_reply")
    assert "ignored" not in detail(replies[1]), "the second OK acknowledged the rest"
