"""The call that wakes the officer, end to end: after the SMS, through the simulated modem on
a pty; a reply while the phone rings acknowledges the alarm and stops the ringing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phone import phone_view

from alarms.alarm_helpers import alarm_site, in_thread, journal_events, run_gateway, until
from simulator.modem import ModemSimulator

OFFICER = "+84901111111"
VOICE = f'\n[escalation.voice]\nnumbers = ["{OFFICER}"]\nring_s = 5\nmin_interval_s = 300\n'


async def click(factory: Any, pin: int) -> None:
    mock = factory.pin(pin)
    await in_thread(lambda: (mock.drive_low(), mock.drive_high()))


def calls_journaled(tmp_path: Path) -> list[dict[str, Any]]:
    return [e["detail"] for e in journal_events(tmp_path, "escalation_attempt")
            if e["detail"]["channel"] == "voice"]


def test_a_reply_while_the_phone_rings_acknowledges_and_stops_the_call(
        tmp_path: Path, broker, modem: ModemSimulator) -> None:  # type: ignore[no-untyped-def]
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port, sms=VOICE)
    modem.set_call_behaviour("ring")

    async def body(gw: Any, factory: Any) -> None:
        await click(factory, 17)
        await until(lambda: modem.active_calls(), what="the phone ringing")
        [alarm] = gw.alarm_engine.open_alarms()
        modem.deliver_sms(OFFICER, f"OK {alarm.code}")
        await until(lambda: alarm.state == "police_acknowledged", what="acknowledged")
        assert modem.active_calls()  # acknowledged while the phone still rings
        await until(lambda: calls_journaled(tmp_path), what="the call journaled")

    run_gateway(config, body)
    [call] = calls_journaled(tmp_path)
    assert call["target"] == OFFICER and call["status"] == "stopped" and call["rang_s"] < 5
    [sim_call] = modem.calls()
    assert sim_call.number == OFFICER and sim_call.hung_up_by == "gateway"
    kinds = [(h.kind, h.number) for h in modem.timeline() if h.number == OFFICER]
    assert kinds == [("sms", OFFICER), ("call", OFFICER), ("sms", OFFICER)], modem.timeline()
    assert [m.text.startswith("Đã nhận OK") for m in phone_view(modem.commands())
            if m.number == OFFICER] == [False, True]


def test_an_answered_call_is_journaled_and_a_second_alarm_does_not_ring_again(
        tmp_path: Path, broker, modem: ModemSimulator) -> None:  # type: ignore[no-untyped-def]
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port, sms=VOICE)
    modem.set_call_behaviour("answer", after_s=0.3)

    async def body(gw: Any, factory: Any) -> None:
        await click(factory, 17)
        await until(lambda: calls_journaled(tmp_path), what="the first call")
        await click(factory, 27)
        await until(lambda: len(calls_journaled(tmp_path)) == 2, what="the second alarm")

    run_gateway(config, body)
    first, second = calls_journaled(tmp_path)
    assert first["status"] == "answered" and first["target"] == OFFICER
    assert second["status"] == "rate_limited"  # one wake-up per 5 minutes is enough
    assert len(modem.calls()) == 1 and modem.calls()[0].hung_up_by == "gateway"
    assert len([m for m in phone_view(modem.commands()) if m.number == OFFICER]) == 2
