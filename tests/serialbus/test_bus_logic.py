"""The gateway's serial bus decisions, sans-I/O: seq rules, events, battery, supervision."""

from __future__ import annotations

from dataclasses import replace

import pytest

from drivers.frames import Frame, FrameType
from gateway.core.clock import ManualClock
from gateway.core.events import EventType
from gateway.serialbus.logic import (
    BusPolicy,
    RejectLimiter,
    Reply,
    Supervisor,
    Verdict,
    ack_led,
    decide,
    is_newer,
    rejected_frame_draft,
)
from gateway.serialbus.registry import NodeRecord

POLICY = BusPolicy(low_battery_mv=2600, hysteresis_mv=100)
NOW = 1_790_000_000.0


def rec(last_seq: int | None = 10, **kw: object) -> NodeRecord:
    return NodeRecord(12, "er-bed-3", last_seq=last_seq, **kw)  # type: ignore[arg-type]


def frame(seq: int, kind: str = "PRESS", value: int = 0, batt: int = 2950) -> Frame:
    return Frame(12, seq, FrameType(kind), value, batt)


@pytest.mark.parametrize(
    ("seq", "last", "newer"),
    [(11, 10, True), (10, 10, False), (9, 10, False), (0, 65535, True), (65535, 0, False),
     (10 + 32767, 10, True), (10 + 32768, 10, False), (5, 40000, True)],
)  # fmt: skip
def test_is_newer(seq: int, last: int, newer: bool) -> None:
    assert is_newer(seq, last) is newer


def test_new_press_is_an_event_then_an_ack() -> None:
    d = decide(frame(11), rec(), keyed=True, policy=POLICY, now=NOW)
    assert d.verdict is Verdict.NEW and d.reply is Reply.ACK
    (draft,) = d.drafts
    assert (draft.type, draft.device, draft.ts) == (EventType.PRESS, "er-bed-3", NOW)
    assert draft.detail == {"node": 12, "seq": 11, "batt_mv": 2950}
    assert (d.record.last_seq, d.record.last_seen, d.record.batt_mv) == (11, NOW, 2950)


@pytest.mark.parametrize(
    ("kind", "etype"),
    [("HOLD", EventType.HOLD), ("RELEASE", EventType.RELEASE), ("TAMPER", EventType.TAMPER),
     ("TAMPER_OK", EventType.TAMPER_OK), ("OPEN", EventType.OPEN),
     ("CLOSE", EventType.CLOSE), ("BOOT", EventType.BOOT)],
)  # fmt: skip
def test_type_mapping(kind: str, etype: EventType) -> None:
    d = decide(frame(11, kind, value=4), rec(), keyed=False, policy=POLICY, now=NOW)
    assert d.drafts[0].type is etype
    assert d.drafts[0].value == (4 if kind == "HOLD" else 0)


def test_first_frame_ever_is_new() -> None:
    d = decide(frame(40000), rec(None), keyed=True, policy=POLICY, now=NOW)
    assert d.verdict is Verdict.NEW


def test_retransmission_is_acked_again_without_an_event() -> None:
    d = decide(frame(10), rec(), keyed=True, policy=POLICY, now=NOW)
    assert (d.verdict, d.drafts, d.reply) == (Verdict.RETRANSMISSION, (), Reply.ACK)
    assert d.record.last_seq == 10 and d.record.last_seen == NOW


def test_keyed_old_seq_is_a_replay() -> None:
    d = decide(frame(9), rec(), keyed=True, policy=POLICY, now=NOW)
    assert d.verdict is Verdict.REPLAY and d.reply is None
    (draft,) = d.drafts
    assert draft.type is EventType.REJECTED_REPLAY and draft.device == "er-bed-3"
    assert draft.detail == {"node": 12, "seq": 9, "last_seq": 10, "frame": "PRESS"}
    assert d.record == rec()  # nothing learnt from a replay


def test_unkeyed_old_seq_is_accepted() -> None:
    d = decide(frame(9), rec(), keyed=False, policy=POLICY, now=NOW)
    assert d.verdict is Verdict.NEW and d.record.last_seq == 9


def test_seq_wraps() -> None:
    d = decide(frame(0), rec(65535), keyed=True, policy=POLICY, now=NOW)
    assert d.verdict is Verdict.NEW


def test_heartbeat_refreshes_and_answers_state() -> None:
    d = decide(frame(11, "HB", value=3600, batt=2900), rec(), keyed=True, policy=POLICY, now=NOW)
    assert (d.verdict, d.drafts, d.reply) == (Verdict.HEARTBEAT, (), Reply.STATE)
    assert (d.record.last_seq, d.record.last_seen, d.record.batt_mv) == (11, NOW, 2900)
    again = decide(frame(11, "HB"), d.record, keyed=True, policy=POLICY, now=NOW)
    assert again.verdict is Verdict.RETRANSMISSION and again.reply is None


def test_low_battery_once_per_crossing() -> None:
    record, seq, events = rec(), 10, []
    for mv in (2700, 2500, 2450, 2650, 2550, 2800, 2500, 0):
        seq += 1
        d = decide(frame(seq, "HB", batt=mv), record, keyed=False, policy=POLICY, now=NOW)
        record = d.record
        events += [(x.type, x.value) for x in d.drafts]
    assert events == [(EventType.LOW_BATTERY, 2500), (EventType.LOW_BATTERY, 2500)]
    assert record.low_battery  # mains (0 mV) neither raises nor clears it


def test_low_battery_with_a_press_comes_after_the_press() -> None:
    d = decide(frame(11, batt=2400), rec(), keyed=False, policy=POLICY, now=NOW)
    assert [x.type for x in d.drafts] == [EventType.PRESS, EventType.LOW_BATTERY]


def test_ack_led() -> None:
    assert ack_led("PRESS", 0) == 1 and ack_led("HOLD", 3) == 3
    assert ack_led("RELEASE", 0) == 0 and ack_led("BOOT", 2) == 2


def test_rejected_frame_draft_keeps_a_printable_excerpt() -> None:
    d = rejected_frame_draft("bad_crc", b"\x00\xff$PB1" * 40, device=None, node=None,
                             suppressed=3, now=NOW)  # fmt: skip
    assert d.type is EventType.REJECTED_FRAME and d.detail is not None
    assert d.detail["reason"] == "bad_crc" and d.detail["suppressed"] == 3
    assert d.detail["raw"].startswith("\\x00\\xff$PB1") and d.detail["raw"].isascii()


def test_supervision_lost_once_and_restored() -> None:
    clock = ManualClock()
    sup = Supervisor(clock, default_s=300)
    sup.watch(1)
    sup.watch(2, timeout_s=60)
    clock.advance(59)
    assert sup.due() == []
    clock.advance(1)
    assert sup.due() == [2]
    assert sup.due() == []  # reported once
    assert sup.next_deadline() == pytest.approx(clock.monotonic() + 240)
    clock.advance(240)
    assert sup.due() == [1] and sup.offline == {1, 2}
    assert sup.seen(2) is True and sup.seen(2) is False
    assert sup.offline == {1}
    assert sup.seen(99) is False  # not watched


def test_a_loss_the_journal_refused_is_reported_again() -> None:
    """The gateway could not journal ``supervision_lost``: the desk must still learn the node
    went silent, so the loss is due again at the next check (not only at the next frame)."""
    clock = ManualClock()
    sup = Supervisor(clock, default_s=300)
    sup.watch(1)
    clock.advance(300)
    assert sup.due() == [1]
    sup.report_again(1)
    assert sup.due() == [1] and sup.due() == []


def test_reject_limiter_counts_everything_journals_a_few() -> None:
    clock = ManualClock()
    limiter = RejectLimiter(clock, per_window=10, window_s=60)
    admitted = [limiter.admit() for _ in range(15)]
    assert admitted == [0] * 10 + [None] * 5
    clock.advance(60)
    assert limiter.admit() == 5
    assert limiter.total == 16


def test_decision_record_is_frozen() -> None:
    d = decide(frame(11), rec(), keyed=True, policy=POLICY, now=NOW)
    with pytest.raises(AttributeError):
        d.record.last_seq = 3  # type: ignore[misc]
    assert replace(d.record, last_seq=3).last_seq == 3


def test_newest_seq_takes_the_newer_of_registry_and_journal_across_the_wrap() -> None:
    from gateway.serialbus.logic import newest_seq

    assert newest_seq(None, None) is None
    assert newest_seq(5, None) == 5
    assert newest_seq(None, 7) == 7
    assert newest_seq(5, 7) == 7
    assert newest_seq(7, 5) == 7  # the registry saw a later heartbeat
    assert newest_seq(65534, 2) == 2  # the journal's seq wrapped past 65535


def test_accepted_seqs_commits_seq_of_accepted_frames_only() -> None:
    from gateway.core.events import EventDraft, EventType
    from gateway.serialbus.logic import AcceptedSeqs

    seqs = AcceptedSeqs()
    press = EventDraft(EventType.PRESS, "dev1", 0, detail={"node": 3, "seq": 41})
    assert seqs.process(press).kv == {"node_seq:3": 41}
    replay = EventDraft(EventType.REJECTED_REPLAY, "dev1", 40, detail={"node": 3, "seq": 40})
    assert seqs.process(replay).kv == {}
    assert seqs.process(EventDraft(EventType.PRESS, "gpio-1", 0)).kv == {}
