"""Police answers are rate-limited without ever swallowing a real confirmation."""

from __future__ import annotations

from gateway.escalation.answers import Answer, ExplainLimit, Purpose

TEXT = "Đã nhận OK 3769: Cấp cứu, Giường 11"


def test_a_new_alarm_with_the_same_room_and_code_is_still_confirmed() -> None:
    """Codes are drawn at random: an alarm in the same room may get the code of one
    confirmed a minute ago. Its text is the same, but it is another alarm: answer it."""
    limit = ExplainLimit()
    first = Answer("+84901111111", TEXT, Purpose.CONFIRMATION, ("alarm-1",))
    second = Answer("+84901111111", TEXT, Purpose.CONFIRMATION, ("alarm-2",))
    assert limit.allow(first, 100.0)
    assert limit.allow(second, 110.0)


def test_the_same_confirmation_twice_is_sent_once_a_minute() -> None:
    limit = ExplainLimit()
    answer = Answer("+84901111111", TEXT, Purpose.CONFIRMATION, ("alarm-1",))
    assert limit.allow(answer, 100.0)
    assert not limit.allow(answer, 130.0), "a reply read twice is confirmed once"
    assert limit.allow(answer, 161.0)


def test_explanations_go_to_a_number_once_in_five_minutes() -> None:
    limit = ExplainLimit()
    one = Answer("0902222222", "Không có báo động mã 1234", Purpose.EXPLANATION)
    other = Answer("0902222222", "Tin nhắn không hiểu", Purpose.EXPLANATION)
    assert limit.allow(one, 0.0)
    assert not limit.allow(other, 299.0), "an auto-responder cannot start a loop"
    assert limit.allow(other, 301.0)
