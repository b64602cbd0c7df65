"""What the police phone gets, read as the phone reads it (an independent PDU decoder, parts
counted): one-part alarm SMS, the confirmation of ``OK <code>``, explanations to configured
numbers only, and a mass alarm naming every room with one code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from phone import phone_view

from alarms.alarm_helpers import alarm_site, in_thread, journal_events, run_gateway, until
from simulator.modem import ModemSimulator

OFFICER_1, OFFICER_2 = "+84901111111", "+84902222222"
STRANGER = "+84909999999"


def to(modem: ModemSimulator, number: str) -> list[Any]:
    return [m for m in phone_view(modem.commands()) if m.number == number]


async def click(factory: Any, pin: int) -> None:
    mock = factory.pin(pin)
    await in_thread(lambda: (mock.drive_low(), mock.drive_high()))


def test_ok_is_confirmed_and_only_configured_numbers_get_answers(
        tmp_path: Path, broker, modem: ModemSimulator) -> None:  # type: ignore[no-untyped-def]
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port)
    seen: dict[str, Any] = {}

    async def body(gw: Any, factory: Any) -> None:
        await click(factory, 17)
        await until(lambda: len(to(modem, OFFICER_1)) == 1 and len(to(modem, OFFICER_2)) == 1,
                    what="the alarm SMS")
        [alarm] = gw.alarm_engine.open_alarms()
        seen["code"] = code = alarm.code
        modem.deliver_sms(STRANGER, f"OK {code}")  # not a police number: no answer, no ack
        modem.deliver_sms("0902 222 222", f"ôk {code}")  # written as the officer types it
        await until(lambda: len(to(modem, OFFICER_2)) == 2, what="the confirmation")
        assert alarm.state == "police_acknowledged"
        modem.deliver_sms(OFFICER_1, f"OK {code}")  # a second officer: confirmed too
        modem.deliver_sms(OFFICER_1, "OK 0000")  # a wrong code: explained
        modem.deliver_sms(OFFICER_1, "alo?")  # within 5 minutes: no second explanation
        modem.deliver_sms(OFFICER_2, "đang tới")  # not understood: explained
        await until(lambda: len(to(modem, OFFICER_1)) == 3 and len(to(modem, OFFICER_2)) == 3,
                    what="the answers")
        await until(lambda: len(journal_events(tmp_path, "police_reply")) >= 6, what="replies")

    run_gateway(config, body)
    code = seen["code"]
    alarm_text = rf"KHẨN CẤP BV Thử nghiệm, Cấp cứu, Quầy tiếp đón, \d\d:\d\d\. Đáp: OK {code}"
    confirmation = f"Đã nhận OK {code}: Cấp cứu, Quầy tiếp đón"
    first, second, third = to(modem, OFFICER_2)
    assert re.fullmatch(alarm_text, first.text) and first.parts == 1 and first.encoding == "ucs2"
    assert (second.text, second.parts) == (confirmation, 1)
    assert (third.text, third.parts) == ("Không hiểu tin nhắn. Để xác nhận, đáp: OK <mã 4 số>", 1)
    texts_1 = [m.text for m in to(modem, OFFICER_1)]
    assert texts_1[1:] == [confirmation, f"Không có báo động mở mã 0000. Đang mở: {code}"]
    assert all(m.parts == 1 for m in phone_view(modem.commands()))
    assert to(modem, STRANGER) == []
    answers = [e["detail"] for e in journal_events(tmp_path, "escalation_attempt")
               if e["detail"].get("purpose")]
    assert sorted(a["purpose"] for a in answers) == ["confirmation"] * 2 + ["explanation"] * 2
    assert all(a["status"] == "delivered" and a["parts"] == 1 for a in answers)


MASS_DEVICES = "".join(f"""
[[devices]]
id = "{dev}"
ward = "{ward}"
room = "{room}"
kind = "panic_button"
pin = {pin}
""" for dev, ward, room, pin in [("p102", "cap-cuu", "P.102", 17), ("p104", "cap-cuu", "P.104", 27),
                                 ("g11", "kham-benh", "Giường 11", 22)])


def test_a_mass_alarm_names_every_room_and_one_code_acknowledges_it(
        tmp_path: Path, broker, modem: ModemSimulator) -> None:  # type: ignore[no-untyped-def]
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port, devices=MASS_DEVICES,
                        policy='default = "immediate"\n[policy.mass_alarm]\ncount = 3\n'
                               'window_s = 60')
    seen: dict[str, Any] = {}

    async def body(gw: Any, factory: Any) -> None:
        for n, pin in enumerate((17, 27, 22), 1):
            await click(factory, pin)
            await until(lambda: len(gw.alarm_engine.open_alarms()) == n, what="the alarm")  # noqa: B023
        mass = lambda: [m for m in to(modem, OFFICER_1) if "3 BÁO ĐỘNG" in m.text]  # noqa: E731
        await until(mass, what="the mass SMS")
        seen["text"] = mass()[0].text
        code = re.search(r"OK (\d{4})$", seen["text"]).group(1)  # type: ignore[union-attr]
        modem.deliver_sms(OFFICER_1, f"OK {code}")
        await until(lambda: all(a.state == "police_acknowledged"
                                for a in gw.alarm_engine.open_alarms()), what="group ack")
        await until(lambda: to(modem, OFFICER_1)[-1].text.startswith("Đã nhận"), what="confirm")
        seen["confirmation"] = to(modem, OFFICER_1)[-1]

    run_gateway(config, body)
    assert re.fullmatch(r"3 BÁO ĐỘNG BV Thử nghiệm\. Cấp cứu: P\.102, P\.104; Khám bệnh: "
                        r"Giường 11\. \d\d:\d\d\. Đáp: OK \d{4}", seen["text"]), seen["text"]
    confirmation = seen["confirmation"]
    code = seen["text"][-4:]
    assert confirmation.text == f"Đã nhận OK {code}: Cấp cứu: P.102, P.104; Khám bệnh: Giường 11"
    assert confirmation.parts == 1
