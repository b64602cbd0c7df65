"""The desk sees the reminder ladder as the guards read it: a round the police were sent
again is a line of its own in today's log ("Nhắc lại công an (lần 1)", by "Tự động"), and
the card keeps saying the police were called. Chromium, a gateway process, the simulated
hotline and the simulated modem on a pty; screenshot looked at."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mqtt_helpers import Broker, wait_for_port
from playwright.sync_api import expect
from waiting import poll_until

from console.browser_helpers import DESKTOP, login, shot, site
from console.console_helpers import free_port
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator

POLICE = "+84912000113"


def _off_loop(call: Any, *args: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call, *args).result(30)


def _history(tmp_path: Path, alarm_id: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{tmp_path / 'var' / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT payload FROM retained WHERE topic = ?",
                           (f"alarm/{alarm_id}",)).fetchone()
    finally:
        conn.close()
    return list(json.loads(row[0])["history"])


def test_a_reminder_round_is_a_line_in_the_desk_log(
        tmp_path: Path, broker: Broker, chromium: Any, gateway_process: Any) -> None:
    port = free_port()
    modem = ModemSimulator()
    modem.start()
    try:
        with HotlineServer(b"bi-mat-duong-day-nong") as hotline:
            config = site(tmp_path, broker.port, hotline, port)
            with config.open("a", encoding="utf-8") as out:
                out.write(f'\n[modem]\nport = "{modem.port}"\npoll_s = 1\n'
                          f'\n[escalation.sms]\nnumbers = ["{POLICE}"]\nmin_interval_s = 0\n'
                          "\n[escalation.reminders]\nafter_s = 3\nmax_rounds = 2\n"
                          "\n[messages]\nmax_parts = 2\n")  # this site has no short names
            gw = gateway_process(config, tmp_path / "gw.log")
            gw.start()
            _off_loop(gw.wait_ready)
            wait_for_port(port)
            context = chromium.new_context(viewport=DESKTOP, locale="vi-VN")
            desk = context.new_page()
            desk.goto(f"http://127.0.0.1:{port}/")
            login(desk)
            answer = _off_loop(gw.control, {"cmd": "click", "device": "er-duress",
                                            "seconds": 0.05})
            assert answer["ok"], answer
            card = desk.locator(".alarm").first
            expect(card.locator(".police.p-sent")).to_be_visible(timeout=10_000)
            line = desk.locator("#history li", has_text="Nhắc lại công an (lần 1)")
            expect(line).to_be_visible(timeout=15_000)
            assert "Tự động (chưa thấy công an xác nhận)" in line.inner_text()
            assert "Phòng cấp cứu 2" in line.inner_text()
            expect(card.locator(".police.p-sent")).to_be_visible()  # still "called"
            shot(desk, "desktop-reminder", full_page=True)
            alarm_id = card.get_attribute("data-id")
            assert alarm_id
            rounds = [h.get("round") for h in _history(tmp_path, alarm_id)
                      if h.get("action") == "reminder"]
            assert rounds == [2], "max_rounds = 2: one reminder, then the ladder ends"
            def sent() -> list[str]:
                return [text for number, text, _ in modem.sent_messages() if number == POLICE]

            poll_until(lambda: len(sent()) >= 2, 10, what="the reminder SMS")
            assert len(sent()) == 2 and sent()[1].startswith("NHẮC LẠI 1: ")
    finally:
        modem.stop()
