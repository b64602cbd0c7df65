"""The console as guards use it, in Debian's headless Chromium, against the gateway as a
real process (``alarm-gateway run --simulate``), a real mosquitto and the simulated police
hotline. The page's sound is heard by recording its Web Audio calls.

* the desk never goes blind: a stalled stream is a banner and a sound within 10 s; after a
  crash and restart of the gateway the open page shows a new alarm and sounds it, with no
  new login;
* a duress alarm (escalated at once) keeps sounding until a guard takes it, and taking it
  keeps the police state; resolving needs an outcome and, with the police called, a
  confirmation; "call the police now" needs a second tap;
* a wall screen sounds a new alarm without a login and cannot act; five wrong passwords,
  then the right one works after the short delay; logged out with an alarm nobody has
  taken, the page says so in red and keeps sounding it.

Screenshots (desktop and phone) go to test-artifacts/. Every wait is bounded and waits on
the page, the journal or the hotline.
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mqtt_helpers import Broker, wait_for_port
from playwright.sync_api import expect

from console.browser_helpers import (
    DESKTOP,
    DISPLAY_TOKEN,
    PHONE,
    SOUND_PROBE,
    StallingProxy,
    login,
    page_now,
    shot,
    site,
    sounds,
    wait_for_sound,
)
from console.console_helpers import GUARD, free_port
from simulator.hotline import HotlineServer

LOST = "MẤT KẾT NỐI"


def _off_loop(call: Any, *args: Any) -> Any:
    """Run a blocking helper that uses asyncio.run in a thread of its own: Playwright's
    sync API keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call, *args).result(30)


def _start(gateway_process: Any, config: Path, log: Path, port: int) -> Any:
    gw = gateway_process(config, log)
    gw.start()
    _off_loop(gw.wait_ready)
    wait_for_port(port)
    return gw


def _click(gw: Any, device: str) -> None:
    answer = _off_loop(gw.control, {"cmd": "click", "device": device, "seconds": 0.05})
    assert answer["ok"], answer


def _page(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, locale="vi-VN")
    context.add_init_script(SOUND_PROBE)
    page = context.new_page()
    page.goto(url)
    return page


def _alarm_doc(tmp_path: Path, alarm_id: str) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{tmp_path / 'var' / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT payload FROM retained WHERE topic = ?",
                           (f"alarm/{alarm_id}",)).fetchone()
    finally:
        conn.close()
    return dict(json.loads(row[0]))


def test_the_desk_never_goes_blind(tmp_path: Path, broker: Broker, chromium: Any,
                                   gateway_process: Any) -> None:
    port = free_port()
    with HotlineServer(b"bi-mat-duong-day-nong") as hotline:
        config = site(tmp_path, broker.port, hotline, port)
        gw = _start(gateway_process, config, tmp_path / "gw.log", port)
        proxy = StallingProxy(port).start()
        try:
            page = _page(chromium, f"http://127.0.0.1:{proxy.port}/", DESKTOP)
            login(page)
            expect(page.locator("#no-alarms")).to_be_visible(timeout=5000)

            # the network path stalls (no FIN, no RST): a banner and a sound within 10 s
            stalled = page_now(page)
            proxy.stall()
            expect(page.locator("#banner")).to_be_visible(timeout=10_000)
            wait_for_sound(page, "lost", stalled, timeout_ms=1000)
            assert LOST in page.inner_text("#banner")
            proxy.flow()
            expect(page.locator("#banner")).to_be_hidden(timeout=8000)

            # the gateway crashes and comes back: the page carries on with no login
            gw.kill()
            expect(page.locator("#banner")).to_be_visible(timeout=10_000)
            gw = _start(gateway_process, config, tmp_path / "gw.log", port)
            expect(page.locator("#banner")).to_be_hidden(timeout=10_000)
            back = page_now(page)
            _click(gw, "exam-room-3")
            card = page.locator(".alarm.untaken")
            expect(card).to_be_visible(timeout=5000)
            expect(card.locator(".room")).to_have_text("Phòng khám 3")
            wait_for_sound(page, "alarm", back, timeout_ms=3000)
            assert page.locator("#login").is_hidden()
            assert page.inner_text("#user") == GUARD
            assert sounds(page, "lost", back + 1500) == []  # restored quietly
        finally:
            proxy.close()


def test_duress_sounds_until_taken_and_actions_are_deliberate(
        tmp_path: Path, broker: Broker, chromium: Any, gateway_process: Any) -> None:
    port = free_port()
    with HotlineServer(b"bi-mat-duong-day-nong") as hotline:
        config = site(tmp_path, broker.port, hotline, port)
        gw = _start(gateway_process, config, tmp_path / "gw.log", port)
        url = f"http://127.0.0.1:{port}/"
        desk = _page(chromium, url, DESKTOP)
        phone = _page(chromium, url, PHONE)
        for page in (desk, phone):
            login(page)
            expect(page.locator("#no-alarms")).to_be_visible(timeout=5000)

        # an ordinary press: red, sounding, with the police countdown
        _click(gw, "er-desk-1")
        panic = desk.locator(".alarm.untaken").first
        expect(panic.locator(".police.p-due")).to_be_visible(timeout=5000)
        expect(phone.locator(".alarm.untaken")).to_be_visible(timeout=5000)
        desk.wait_for_function("() => !document.body.classList.contains('flash')")
        shot(desk, "desktop-open-alarm")
        shot(phone, "phone-open-alarm")

        # duress: escalated at once, most urgent, and it keeps sounding while nobody takes it
        pressed = page_now(desk)
        _click(gw, "er-duress")
        duress = desk.locator(".alarm.critical.untaken")
        expect(duress.locator(".police.p-sent")).to_be_visible(timeout=10_000)
        assert hotline.wait_for(lambda h: len(h.deliveries()) >= 1, timeout=10)
        alarm_id = duress.get_attribute("data-id")
        assert alarm_id and _alarm_doc(tmp_path, alarm_id)["state"] == "escalated"
        desk.wait_for_function(
            "since => window.__sounds.filter(n => n.at >= since && n.freq === 1400"
            " && n.state === 'running').length >= 4", arg=pressed, timeout=6000)  # twice
        assert "Đường dây nóng công an" in duress.locator(".police-state").inner_text()
        _check_phone_layout(phone)
        desk.wait_for_function("() => !document.body.classList.contains('flash')")
        shot(desk, "desktop-duress")
        shot(phone, "phone-duress")

        # a guard takes it: the police state stays, the siren stops
        police_text = duress.locator(".police-state").inner_text()
        duress.locator("button[data-action=ack]").click()
        card = desk.locator(f".alarm[data-id='{alarm_id}']")
        expect(card).to_have_class("alarm state-escalated critical taken", timeout=5000)
        expect(card.locator(".taken")).to_contain_text(GUARD)
        assert card.locator(".police-state").inner_text() == police_text
        doc = _alarm_doc(tmp_path, alarm_id)
        assert doc["state"] == "escalated" and doc["taken_by"] == GUARD
        assert len(hotline.deliveries()) == 1  # the police are not recalled
        taken = page_now(desk)
        expect(phone.locator(f".alarm[data-id='{alarm_id}'].taken")).to_be_visible(timeout=5000)
        shot(desk, "desktop-taken")
        shot(phone, "phone-taken")
        desk.wait_for_timeout(2500)  # one critical period: the siren must not come back
        assert sounds(desk, "critical", taken + 300) == []

        # resolving: refused without an outcome, by the page and by the server
        card.locator("button[data-action=resolve]").click()
        card.locator(".confirm-resolve").click()
        expect(card.locator(".resolve-warn")).to_have_text("Chọn một kết quả hoặc ghi chú.")
        refused = desk.evaluate(
            "async id => (await fetch('/api/alarms/' + id + '/command', {method: 'POST',"
            " headers: {'Content-Type': 'application/json',"
            " 'X-CSRF-Token': (await (await fetch('/api/session')).json()).csrf},"
            " body: JSON.stringify({action: 'resolve'})})).status", alarm_id)
        assert refused == 400
        assert _alarm_doc(tmp_path, alarm_id)["state"] == "escalated"
        card.locator(".outcome[data-outcome=handled]").click()
        expect(card.locator(".police-warning")).to_contain_text("Công an đã được gọi")
        card.locator(".confirm-resolve").click()
        expect(card).to_be_hidden(timeout=5000)
        last = _alarm_doc(tmp_path, alarm_id)["history"][-1]
        assert last["state"] == "resolved" and last["note"] == "Bảo vệ đã xử lý xong"

        # "call the police now": the first tap only arms it
        escalate = panic.locator("button[data-action=escalate]")
        escalate.click()
        expect(escalate).to_have_text("Chạm lần nữa để báo công an")
        assert len(hotline.deliveries()) == 1
        escalate.click()
        assert hotline.wait_for(lambda h: len(h.deliveries()) >= 2, timeout=10)
        expect(panic.locator(".police.p-sent")).to_be_visible(timeout=10_000)
        history = desk.inner_text("#history")
        assert "Đường dây nóng công an" in history and "Nút cưỡng ép phòng 2" in history
        assert "device:" not in history and "http://" not in history
        assert f"bởi {GUARD}" in history and "Kết thúc: Bảo vệ đã xử lý xong" in history
        shot(desk, "desktop-history", full_page=True)


def _check_phone_layout(page: Any) -> None:
    """The header under 15 % of the screen; the three action buttons side by side."""
    header = page.eval_on_selector(".top", "e => e.getBoundingClientRect().height")
    assert header < 0.15 * PHONE["height"], header
    tops = page.eval_on_selector_all(".alarm.critical .action[data-action]",
                                     "bs => bs.map(b => Math.round(b.getBoundingClientRect().top))")
    assert len(tops) == 3 and len(set(tops)) == 1, tops


def test_wall_screen_and_login_delays(tmp_path: Path, broker: Broker, chromium: Any,
                                      gateway_process: Any) -> None:
    port = free_port()
    with HotlineServer(b"bi-mat-duong-day-nong") as hotline:
        config = site(tmp_path, broker.port, hotline, port)
        gw = _start(gateway_process, config, tmp_path / "gw.log", port)
        url = f"http://127.0.0.1:{port}"

        # a page that may not see alarms says so in red
        blind = _page(chromium, url + "/", PHONE)
        expect(blind.locator("#access")).to_contain_text("ĐĂNG NHẬP ĐỂ THẤY BÁO ĐỘNG")

        # a wall screen: alarms live, with sound, without a login; it cannot act
        wall = _page(chromium, f"{url}/display?token={DISPLAY_TOKEN}", DESKTOP)
        small_wall = _page(chromium, f"{url}/display?token={DISPLAY_TOKEN}", PHONE)
        expect(wall.locator("#access")).to_contain_text("CHƯA ĐĂNG NHẬP")
        expect(wall.locator("#no-alarms")).to_be_visible(timeout=5000)
        before = page_now(wall)
        _click(gw, "exam-room-3")
        card = wall.locator(".alarm.untaken")
        expect(card).to_be_visible(timeout=5000)
        wait_for_sound(wall, "alarm", before, timeout_ms=3000)
        assert card.locator(".actions").is_hidden()
        refused = wall.evaluate(
            "async id => (await fetch('/api/alarms/' + id + '/command', {method: 'POST',"
            " headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({action: 'ack'})})).status", card.get_attribute("data-id"))
        assert refused == 401
        wall.wait_for_function("() => !document.body.classList.contains('flash')")
        shot(wall, "desktop-wall")
        expect(small_wall.locator(".alarm.untaken")).to_be_visible(timeout=5000)
        small_wall.wait_for_function("() => !document.body.classList.contains('flash')")
        shot(small_wall, "phone-wall")
        shot(blind, "phone-logged-out")

        # five wrong passwords, then the right one: refused with the delay to wait while
        # it runs (1 s; on a slow machine it may already have passed), then it works
        for _ in range(5):
            login(blind, "sai-mat-khau")
            expect(blind.locator("#login-error")).to_have_text(
                "Sai tên đăng nhập hoặc mật khẩu.", timeout=10_000)
            blind.evaluate("document.getElementById('login-error').textContent = ''")
        login(blind)
        blind.wait_for_function(
            "() => { const a = document.querySelector('.alarm.untaken .actions');"
            " return document.getElementById('login-error').textContent !== ''"
            " || (a !== null && !a.hidden); }", timeout=10_000)
        announced = blind.inner_text("#login-error")
        if announced:
            assert announced == "Sai nhiều lần. Chờ 1 giây rồi thử lại."
            blind.wait_for_timeout(1000)  # the delay the page announced
            login(blind)
        expect(blind.locator(".alarm.untaken .actions")).to_be_visible(timeout=5000)

        # logged out while an alarm nobody has taken is open: red, says so, keeps sounding
        blind.click("#logout")
        expect(blind.locator("#access")).to_contain_text(
            "ĐĂNG NHẬP ĐỂ THẤY BÁO ĐỘNG — Đang có 1 báo động chưa ai nhận xử lý!")
        out = page_now(blind)
        wait_for_sound(blind, "alarm", out + 500, timeout_ms=6000)
        shot(blind, "phone-logged-out-alarm")
        journal = sqlite3.connect(tmp_path / "var" / "journal.sqlite3")
        try:
            failed = journal.execute("SELECT body FROM events WHERE type = 'login_failed'"
                                     ).fetchall()
        finally:
            journal.close()
        assert len(failed) == 5 + bool(announced)
        assert all("sai-mat-khau" not in b for (b,) in failed)


def test_a_late_command_answer_never_rolls_a_card_back(
        tmp_path: Path, broker: Broker, chromium: Any, gateway_process: Any) -> None:
    """The answer to "call the police now" can reach the page after the stream has already
    shown the police called (a hotline answering in milliseconds): the card must keep the
    newer state, not go back to "being sent" for good. The answer is held back here so the
    order is certain, not left to chance."""
    port = free_port()
    with HotlineServer(b"bi-mat-duong-day-nong") as hotline:
        config = site(tmp_path, broker.port, hotline, port)
        gw = _start(gateway_process, config, tmp_path / "gw.log", port)
        desk = _page(chromium, f"http://127.0.0.1:{port}/", DESKTOP)
        login(desk)
        _click(gw, "er-desk-1")
        card = desk.locator(".alarm.untaken").first
        expect(card.locator(".police.p-due")).to_be_visible(timeout=5000)

        def late_answer(route: Any) -> None:
            answer = route.fetch()  # the gateway has committed the command
            assert hotline.wait_for(lambda h: len(h.deliveries()) >= 1, timeout=10)
            alarm_id = card.get_attribute("data-id")
            desk.wait_for_function(  # the stream already shows the police called
                "id => document.querySelector(`.alarm[data-id='${id}'] .police.p-sent`)",
                arg=alarm_id, timeout=10_000)
            route.fulfill(response=answer)

        desk.route("**/api/alarms/*/command", late_answer)
        escalate = card.locator("button[data-action=escalate]")
        escalate.click()
        escalate.click()
        # the answer came: the page set its result and rendered in the same task, so
        # whatever the answer did to the card is done when this shows
        expect(card.locator(".result.ok")).to_be_visible(timeout=15_000)
        expect(card.locator(".police.p-sent")).to_be_visible(timeout=1000)
        assert "đang báo" not in card.locator(".police-state").inner_text()
