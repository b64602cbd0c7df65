"""The alarm engine, sans-I/O: events in, events out, time from a ManualClock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alarms.alarm_helpers import Harness, detail, site
from gateway.alarms.model import TRANSITIONS, escalation_id
from gateway.core.events import EventDraft, EventType

PRESS = EventType.PRESS


def press(device: str = "er-1", type_: EventType = PRESS, drill: bool = False) -> EventDraft:
    return EventDraft(type_, device=device, drill=drill)


def attempt(h: Harness, plan: dict, index: int, status: str, will_retry: bool = False) -> None:  # type: ignore[type-arg]
    d = plan["deliveries"][index]
    h.record(EventDraft(EventType.ESCALATION_ATTEMPT, alarm_id=plan["alarms"][0], detail={
        **d, "attempt": 1, "status": status, "will_retry": will_retry,
        "alarms": plan["alarms"], "delivered_at": "2026-01-01T00:00:00.000Z"}))


def test_press_raises_one_alarm_and_more_presses_only_count(tmp_path: Path) -> None:
    h = Harness(site(tmp_path))
    first = h.record(press())
    assert [str(e.type) for e in first] == ["press", "alarm_state"]
    alarm_id = first[0].alarm_id
    assert alarm_id and first[1].alarm_id == alarm_id and first[1].device == "er-1"
    assert first[1].detail == {"state": "raised", "by": "device:er-1", "note": ""}
    for _ in range(3):
        again = h.record(press())
        assert [str(e.type) for e in again] == ["press"] and again[0].alarm_id == alarm_id
    doc = h.retained[f"alarm/{alarm_id}"]
    assert doc["press_count"] == 4 and doc["state"] == "raised" and doc["type"] == "panic"
    assert len(doc["code"]) == 4 and doc["code"].isdigit()
    assert set(doc) == {"id", "code", "state", "type", "device", "ward", "room", "drill",
                        "raised_at", "press_count", "taken_by", "taken_at", "escalations",
                        "history"}
    assert doc["taken_by"] is None and doc["taken_at"] is None
    # the private record keeps only what the document does not carry: the police timer
    assert set(h.kv[f"alarm:{alarm_id}"]) == {"raised_at", "escalate_at"}
    assert h.leds == [("er-1", 1)]
    assert h.plans() == []  # default policy: security desk first, 60 s


def test_trouble_is_not_an_alarm(tmp_path: Path) -> None:
    h = Harness(site(tmp_path))
    for t in (EventType.TAMPER, EventType.LOW_BATTERY, EventType.SUPERVISION_LOST,
              EventType.RELEASE):
        assert [e.alarm_id for e in h.record(press(type_=t))] == [None]
    assert h.record(press("door-2", EventType.OPEN))[0].alarm_id is None  # no alarm_on_open
    assert len(h.record(press("door-1", EventType.OPEN))) == 2
    assert h.engine.open_alarms()[0].type == "door"


def test_timer_escalates_unless_security_acknowledges(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy={"default": "unacknowledged_after", "after_s": 30}))
    a = h.alarm(h.record(press("er-1"))[0].alarm_id).id
    b = h.alarm(h.record(press("b-0"))[0].alarm_id).id
    assert h.engine.next_deadline() == h.clock.wall() + 30
    h.clock.advance(10)
    h.record(h.engine.command_draft(a, "ack", "Bảo vệ Nam", "đang tới", "mqtt"))
    h.clock.advance(19.9)
    assert h.fire_timers() == []
    h.clock.advance(0.2)
    fired = h.fire_timers()
    assert [e.alarm_id for e in fired] == [b]
    plan = detail(fired[0])["escalation"]
    assert plan["reason"] == "timer" and plan["alarms"] == [b] and plan["round"] == 1
    assert [d["channel"] for d in plan["deliveries"]] == ["http", "sms", "sms"]
    assert plan["deliveries"][0]["escalation_id"] == escalation_id(b, "http",
                                                                   "http://127.0.0.1:9/alarm", 1)
    assert h.engine.next_deadline() is None
    assert h.alarm(a).state == "acknowledged" and not h.alarm(a).escalations


def test_delivery_moves_to_escalated_then_police_reply(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy={"default": "immediate"}))
    events = h.record(press())
    plan = detail(events[1])["escalation"]
    alarm = h.alarm(events[0].alarm_id)
    attempt(h, plan, 0, "retrying", will_retry=True)
    assert alarm.state == "raised" and alarm.escalations[0].status == "retrying"
    attempt(h, plan, 0, "delivered")
    assert alarm.state == "escalated" and alarm.escalations[0].attempts == 2
    assert detail(h.of_type("alarm_state")[-1])["state"] == "escalated"
    attempt(h, plan, 1, "delivered")  # the SMS too: still one transition
    assert len([e for e in h.of_type("alarm_state") if detail(e)["state"] == "escalated"]) == 1
    reply = h.record(EventDraft(EventType.POLICE_REPLY, detail={
        "from": "+84901111111", "text": "ok " + alarm.code, "code": alarm.code,
        "authorised": True}))
    assert reply[0].alarm_id == alarm.id and alarm.state == "police_acknowledged"
    assert h.leds[-1] == ("er-1", 4)
    h.record(h.engine.command_draft(alarm.id, "resolve", "Bảo vệ", "", "mqtt"))
    assert h.leds[-1] == ("er-1", 0) and not alarm.open
    states = [x["state"] for x in h.retained[f"alarm/{alarm.id}"]["history"]]
    assert states == ["raised", "escalated", "police_acknowledged", "resolved"]
    assert h.devices.flags("er-1").alarm is False  # type: ignore[union-attr]  # device follows


def test_ack_takes_an_alarm_in_every_open_state_without_recalling_the_police(
        tmp_path: Path) -> None:
    """SPEC §3: a duress alarm is escalated at once; a guard's ack still takes it, keeps
    ``escalated`` (and the police's acknowledgement), and every ack is in the history."""
    h = Harness(site(tmp_path))
    events = h.record(press("er-2"))  # a duress button: immediate
    alarm = h.alarm(events[0].alarm_id)
    attempt(h, detail(events[1])["escalation"], 0, "delivered")
    assert alarm.state == "escalated" and h.engine.check_command(alarm.id, "ack") is None
    h.clock.advance(5)
    taken = h.record(h.engine.command_draft(alarm.id, "ack", "Bảo vệ Lan", "đang tới", "mqtt"))
    assert [str(e.type) for e in taken] == ["alarm_state"]
    assert detail(taken[0])["state"] == "escalated"
    doc = h.retained[f"alarm/{alarm.id}"]
    assert doc["state"] == "escalated" and doc["taken_by"] == "Bảo vệ Lan"
    assert doc["taken_at"] == doc["history"][-1]["ts"]
    assert doc["history"][-1] == {"ts": doc["taken_at"], "state": "escalated",
                                  "by": "Bảo vệ Lan", "note": "đang tới", "action": "ack"}
    assert len(h.plans()) == 1 and h.leds[-1] == ("er-2", 3)  # no recall, LED unchanged
    h.record(EventDraft(EventType.POLICE_REPLY, detail={
        "from": "+84901111111", "code": alarm.code, "authorised": True}))
    h.clock.advance(5)
    h.record(h.engine.command_draft(alarm.id, "ack", "Bảo vệ Minh", "", "mqtt"))
    doc = h.retained[f"alarm/{alarm.id}"]
    assert doc["state"] == "police_acknowledged" and doc["taken_by"] == "Bảo vệ Lan"
    assert [x.get("action") for x in doc["history"]] == [None, None, "ack", None, "ack"]
    assert doc["history"][-1]["by"] == "Bảo vệ Minh" and "note" not in doc["history"][-1]
    restarted = h.restart()
    assert restarted.alarm(alarm.id).taken_by == "Bảo vệ Lan"


def test_first_ack_in_raised_takes_and_stops_the_timer(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy={"default": "unacknowledged_after", "after_s": 30}))
    alarm = h.alarm(h.record(press())[0].alarm_id)
    h.record(h.engine.command_draft(alarm.id, "ack", "Bảo vệ Nam", "", "mqtt"))
    assert alarm.state == "acknowledged" and alarm.taken_by == "Bảo vệ Nam"
    assert alarm.taken_at == h.clock.wall() and h.engine.next_deadline() is None
    assert h.alarm(alarm.id).acknowledged_locally
    h.record(h.engine.command_draft(alarm.id, "resolve", "Bảo vệ Nam", "Báo nhầm", "mqtt"))
    last = h.retained[f"alarm/{alarm.id}"]["history"][-1]
    assert last["state"] == "resolved" and last["note"] == "Báo nhầm"


def test_record_from_before_taken_by_is_read_from_its_history(tmp_path: Path) -> None:
    h = Harness(site(tmp_path))
    alarm = h.alarm(h.record(press())[0].alarm_id)
    h.record(h.engine.command_draft(alarm.id, "ack", "Bảo vệ Nam", "", "mqtt"))
    old = {k: v for k, v in alarm.to_store().items() if k not in ("taken_by", "taken_at")}
    restarted = Harness(h.config, h.clock, {f"alarm:{alarm.id}": old})
    assert restarted.alarm(alarm.id).taken_by == "Bảo vệ Nam"
    assert restarted.alarm(alarm.id).taken_at == h.clock.wall()


def test_police_reply_ignored_when_unauthorised_or_unknown(tmp_path: Path) -> None:
    h = Harness(site(tmp_path))
    alarm = h.alarm(h.record(press())[0].alarm_id)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"from": "+84999", "code": alarm.code, "authorised": False}, "not a configured"),
        ({"from": "+84901111111", "code": None, "authorised": True}, "not an 'OK"),
        ({"from": "+84901111111", "code": "9999" if alarm.code != "9999" else "9998",
          "authorised": True}, "no open alarm"),
    ]
    for sent, why in cases:
        out = h.record(EventDraft(EventType.POLICE_REPLY, detail=sent))
        assert len(out) == 1 and why in detail(out[0])["ignored"]
    assert alarm.state == "raised"


def test_hold_is_immediate_and_upgrades_an_open_panic(tmp_path: Path) -> None:
    h = Harness(site(tmp_path))
    events = h.record(press("er-1"))
    assert h.plans() == []
    h.record(press("er-1", EventType.HOLD))
    alarm = h.alarm(events[0].alarm_id)
    assert alarm.type == "duress" and alarm.press_count == 1
    assert h.plans()[0]["reason"] == "hold" and h.engine.next_deadline() is None
    h.record(press("er-2"))  # a duress button: policy.hold, immediate
    assert h.plans()[1]["alarm"]["type"] == "duress"


def test_policy_rules_most_specific_wins(tmp_path: Path) -> None:
    rules = [{"kind": "panic_button", "mode": "never"},
             {"ward": "cap-cuu", "kind": "panic_button", "mode": "immediate"}]
    h = Harness(site(tmp_path, policy={"rules": rules}))
    h.record(press("er-1"))
    h.record(press("b-0"))
    assert [p["alarm"]["device"] for p in h.plans()] == ["er-1"]
    assert h.engine.next_deadline() is None  # b-0: never


def test_mass_alarm_is_one_combined_escalation(tmp_path: Path) -> None:
    policy = {"default": "immediate", "mass_alarm": {"count": 3, "window_s": 10}}
    h = Harness(site(tmp_path, policy=policy))
    ids = []
    for dev in ("er-1", "b-0", "b-1", "b-2", "door-1"):
        ids.append(h.record(press(dev))[0].alarm_id)
        h.clock.advance(1)
    plans = h.plans()
    assert [p["mass"] for p in plans] == [False, False, True]
    mass = plans[2]
    assert mass["alarms"] == ids[:3] and mass["count"] == 3 and mass["key"] == f"mass-{ids[0]}"
    late = h.alarm(ids[4])
    assert {e.escalation_id for e in late.escalations} == {
        d["escalation_id"] for d in mass["deliveries"]}
    attempt(h, mass, 0, "delivered")
    assert all(h.alarm(i).state == "escalated" for i in ids)


def test_joining_a_delivered_mass_group_is_escalated(tmp_path: Path) -> None:
    policy = {"default": "immediate", "mass_alarm": {"count": 3, "window_s": 10}}
    h = Harness(site(tmp_path, policy=policy))
    for dev in ("er-1", "b-0", "b-1"):
        h.record(press(dev))
        h.clock.advance(1)
    attempt(h, h.plans()[2], 0, "delivered")
    out = h.record(press("b-2"))
    late = h.alarm(out[0].alarm_id)
    assert late.state == "escalated" and len(h.plans()) == 3
    assert [detail(e)["state"] for e in out[1:]] == ["raised", "escalated"]
    assert h.leds[-2:] == [("b-2", 1), ("b-2", 3)]


def test_alarm_after_a_resolved_mass_group_is_escalated(tmp_path: Path) -> None:
    """Once every member of a mass group is resolved the group is over: an alarm raised
    within its window must get an escalation of its own, not join a finished group."""
    policy = {"default": "immediate", "mass_alarm": {"count": 3, "window_s": 10}}
    h = Harness(site(tmp_path, policy=policy))
    ids = []
    for dev in ("er-1", "b-0", "b-1"):
        ids.append(h.record(press(dev))[0].alarm_id)
        h.clock.advance(1)
    attempt(h, h.plans()[2], 0, "delivered")
    for alarm_id in ids:
        h.record(h.engine.command_draft(alarm_id, "resolve", "op", "", "test"))
    h.clock.advance(2)  # still within the group's window
    late = h.alarm(h.record(press("b-2"))[0].alarm_id)
    plan = h.plans()[-1]
    assert plan["alarms"] == [late.id] and not plan["mass"]
    assert {e.escalation_id for e in late.escalations} == {
        d["escalation_id"] for d in plan["deliveries"]}


def test_drill_is_separate_and_immediate(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, escalation={
        "sms": {"numbers": ["+84901111111"], "drill_numbers": ["+84903333333"]}}))
    real = h.record(press())[0].alarm_id
    drill = h.record(press(drill=True))
    assert drill[0].alarm_id != real and all(e.drill for e in drill)
    plan = h.plans()[0]
    assert plan["alarm"]["drill"] is True
    assert [d["target"] for d in plan["deliveries"]] == ["+84903333333"]


def test_restart_keeps_timer_deadline_and_codes(tmp_path: Path) -> None:
    config = site(tmp_path, policy={"after_s": 120})
    h = Harness(config)
    alarm_id = h.record(press())[0].alarm_id
    deadline = h.engine.next_deadline()
    h.clock.advance(100)
    again = h.restart()
    assert again.engine.next_deadline() == deadline
    assert again.record(press())[0].alarm_id == alarm_id  # still the open alarm
    h.clock.advance(20)
    assert [e.alarm_id for e in again.fire_timers()] == [alarm_id]


def test_codes_unique_among_open_alarms(tmp_path: Path) -> None:
    h = Harness(site(tmp_path))
    codes = set()
    for dev in ("er-1", "er-2", "b-0", "b-1", "b-2", "door-1"):
        h.record(press(dev))
    codes = {a.code for a in h.engine.open_alarms()}
    assert len(codes) == 6


ACTIONS = st.sampled_from(["ack", "escalate", "resolve"])


@settings(max_examples=60, deadline=None)
@given(st.lists(ACTIONS, max_size=8))
def test_commands_never_move_backwards(tmp_path_factory, actions: list[str]) -> None:  # type: ignore[no-untyped-def]
    h = Harness(site(tmp_path_factory.mktemp("c")))
    alarm = h.alarm(h.record(press())[0].alarm_id)
    alarm_id = alarm.id
    for action in actions:
        before = alarm.state
        reason = h.engine.check_command(alarm_id, action)
        out = h.record(h.engine.command_draft(alarm_id, action, "op", "", "test"))
        if reason is not None:
            assert str(out[0].type) == "rejected_command" and alarm.state == before
        else:
            assert alarm.state == before or alarm.state in TRANSITIONS[before]
