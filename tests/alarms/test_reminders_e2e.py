"""The reminder ladder end to end: a gateway in process, the simulated modem on a pty, every
SMS read as the phones read it (an independent PDU decoder). Nobody answers the first SMS:
the ward number is reminded (``NHẮC LẠI 1``) and the district line joins with the alarm
itself; the district officer's ``OK`` is confirmed and ends the ladder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from phone import phone_view

from alarms.alarm_helpers import POLICE, alarm_site, in_thread, journal_events, run_gateway, until
from simulator.modem import ModemSimulator

WARD = POLICE[0]
DISTRICT = "+84913333333"
LADDER = (f'next_tiers = [["{DISTRICT}"]]\n'
          "\n[escalation.reminders]\nafter_s = 2\nrounds_per_tier = 1\nmax_rounds = 5\n")


def to(modem: ModemSimulator, number: str) -> list[Any]:
    return [m for m in phone_view(modem.commands()) if m.number == number]


def test_unanswered_alarm_climbs_the_ladder_until_the_police_answer(
        tmp_path: Path, broker: Any, modem: ModemSimulator) -> None:
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port, sms=LADDER)
    seen: dict[str, Any] = {}

    async def body(gw: Any, factory: Any) -> None:
        pin = factory.pin(17)
        await in_thread(lambda: (pin.drive_low(), pin.drive_high()))
        await until(lambda: len(to(modem, WARD)) == 1, what="the alarm SMS")
        [alarm] = gw.alarm_engine.open_alarms()
        seen["code"] = alarm.code
        assert to(modem, DISTRICT) == [], "the district line is the next tier, not the first"
        # nobody answers: one reminder period later, the next round
        await until(lambda: len(to(modem, WARD)) == 2 and len(to(modem, DISTRICT)) == 1,
                    timeout=20, what="the first reminder round")
        modem.deliver_sms(DISTRICT, f"OK {alarm.code}")
        await until(lambda: any(m.text.startswith("Đã nhận") for m in to(modem, DISTRICT)),
                    timeout=20, what="the confirmation")
        await until(lambda: alarm.state == "police_acknowledged", what="the police ack")
        seen["remind_at"] = alarm.remind_at
        seen["due"] = gw.alarm_engine.next_due()
        seen["ward"] = len(to(modem, WARD))

    run_gateway(config, body)
    code = seen["code"]
    assert seen["remind_at"] is None and seen["due"] is None, "the ladder stopped at the OK"
    ward, district = to(modem, WARD), to(modem, DISTRICT)
    assert re.fullmatch(rf"KHẨN CẤP .*Đáp: OK {code}", ward[0].text)
    assert re.fullmatch(rf"NHẮC LẠI 1: .*OK {code}", ward[1].text), ward[1].text
    assert re.fullmatch(rf"KHẨN CẤP .*Đáp: OK {code}", district[0].text), district[0].text
    [confirmation] = [m for m in district if m.text.startswith("Đã nhận")]
    assert confirmation.text.startswith(f"Đã nhận OK {code}")
    assert all(m.parts == 1 for m in ward + district)
    # a round may have been decided while the OK was on its way: never more than one more
    assert len(ward) <= seen["ward"] + 1
    plans = [e["detail"]["escalation"] for e in journal_events(tmp_path, "alarm_state")
             if "escalation" in (e["detail"] or {})]
    assert [p["reason"] for p in plans][:2] == ["immediate", "reminder"]
    assert [p["round"] for p in plans] == list(range(1, len(plans) + 1))
