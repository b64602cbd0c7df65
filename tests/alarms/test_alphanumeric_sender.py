"""An SMS whose sender's type of address is alphanumeric (or any other non-numeric type) is
never a police number, even when its name reads like one (SPEC §4): anyone can send an SMS
from the alphanumeric sender "0901111111"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarms.alarm_helpers import POLICE, alarm_site, in_thread, journal_events, run_gateway, until
from simulator.modem import ModemSimulator


def test_a_spoofed_alphanumeric_police_number_never_acknowledges(
        tmp_path: Path, broker, modem: ModemSimulator) -> None:  # type: ignore[no-untyped-def]
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port)
    spoof = POLICE[1]  # "0902222222", a configured police number, as an alphanumeric name

    async def body(gw: Any, factory: Any) -> None:
        mock = factory.pin(17)
        await in_thread(lambda: (mock.drive_low(), mock.drive_high()))
        await until(lambda: len(modem.sent_messages()) == 2, what="the police SMS")
        [alarm] = gw.alarm_engine.open_alarms()
        await until(lambda: alarm.state == "escalated", what="escalated")
        # a real SMS-DELIVER PDU on the pty, its TP-OA of type 0xD0 (alphanumeric)
        modem.deliver_sms(spoof, f"OK {alarm.code}", alphanumeric=True)
        await until(lambda: journal_events(tmp_path, "police_reply"), what="the reply")
        assert alarm.state == "escalated" and gw.gpio.led("er-desk-1") == 3
        modem.deliver_sms(spoof, f"OK {alarm.code}")  # the real number: accepted
        await until(lambda: alarm.state == "police_acknowledged", what="police ack")

    run_gateway(config, body)
    spoofed, real = journal_events(tmp_path, "police_reply")
    assert spoofed["detail"]["from"] == spoof and spoofed["detail"]["authorised"] is False
    assert spoofed["detail"]["sender_type"] == "alphanumeric"
    assert "alphanumeric" in spoofed["detail"]["ignored"] and spoofed["alarm_id"] is None
    assert real["detail"]["from"] == "+84902222222" and real["detail"]["authorised"] is True
