"""The console end to end in real headless Chromium: a whole gateway (simulated GPIO, real
mosquitto, the simulated police hotline) serves the page; a guard logs in, sees a press
appear, acknowledges it, calls the police, and sees the link to the gateway drop and return.

Every wait is a bounded wait on the DOM, the journal or the hotline; no sleeps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mqtt_helpers import Broker, wait_for_port

from console.console_helpers import GUARD, GUARD_PASSWORD, GatewayThread, fast_user, free_port
from simulator.hotline import HotlineServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LOST = "Mất kết nối với gateway (không kết nối)"
SECRET = b"bi-mat-duong-day-nong"


def _site(tmp_path: Path, broker: Broker, hotline: HotlineServer, console_port: int) -> Path:
    secret = tmp_path / "hotline.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, 0o600)
    text = f"""
[site]
id = "bv-test"
name = "Bệnh viện Thử nghiệm"
address = "1 Đường Thử, Hà Nội"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"

[[devices]]
id = "er-desk-1"
ward = "cap-cuu"
room = "Quầy tiếp đón"
name = "Nút quầy tiếp đón"
pin = 17
bounce_ms = 20
hold_s = 2.0

[mqtt]
url = "mqtt://127.0.0.1:{broker.port}"
keepalive_s = 5

[storage]
path = "{tmp_path / 'var'}"

[health]
interval_s = 2

[policy]
default = "unacknowledged_after"
after_s = 300

[escalation.http]
url = "{hotline.url}"
secret_file = "{secret}"
timeout_s = 3

[console]
listen = "127.0.0.1:{console_port}"
session_minutes = 60
{fast_user(GUARD, GUARD_PASSWORD)}
"""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _alarm_record(g: GatewayThread, alarm_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alarm's retained document and the engine's stored record, read on its loop."""
    assert g.gw is not None
    journal = g.gw.journal

    async def read() -> tuple[dict[str, Any], dict[str, Any]]:
        doc = journal.retained_all(f"alarm/{alarm_id}").get(f"alarm/{alarm_id}", {})
        stored = journal.kv_all(f"alarm:{alarm_id}").get(f"alarm:{alarm_id}", {})
        return doc, stored

    result: tuple[dict[str, Any], dict[str, Any]] = g.call(read)
    return result


def _press(g: GatewayThread, device: str) -> None:
    """A short press through the simulation control command (the pin is driven from a
    worker thread, as lgpio's thread would on a Pi)."""
    assert g.gw is not None
    gw = g.gw
    line = json.dumps({"cmd": "click", "device": device, "seconds": 0.1}).encode()

    async def click() -> dict[str, Any]:
        return await gw.control.handle(line)

    answer = g.call(click)
    assert answer["ok"], answer


def _login(page: Any) -> None:
    page.fill("#login-name", GUARD)
    page.fill("#login-password", GUARD_PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#console", state="visible", timeout=5000)


def test_guard_handles_an_alarm_in_the_browser(
    tmp_path: Path, broker: Broker, chromium: Any, gateway_thread: type[GatewayThread]
) -> None:
    port = free_port()
    with HotlineServer(SECRET) as hotline:
        config = _site(tmp_path, broker, hotline, port)
        g = gateway_thread(config).start()
        assert g.gw is not None and g.gw.command_handler is not None, "no alarm engine"
        wait_for_port(port)
        page = chromium.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#login-form", state="visible", timeout=5000)
        _login(page)
        page.wait_for_selector("#no-alarms", state="visible", timeout=5000)

        # a press appears within a second, with the police timer running
        _press(g, "er-desk-1")
        card = page.wait_for_selector(".alarm.state-raised", timeout=1000)
        alarm_id = card.get_attribute("data-id")
        assert alarm_id
        assert card.query_selector(".ward").inner_text() == "Khoa Cấp cứu"
        assert card.query_selector(".room").inner_text() == "Quầy tiếp đón"
        page.wait_for_function(
            "() => document.querySelector('.alarm .police.p-due') !== null", timeout=3000)
        assert "sẽ tự động báo sau" in card.query_selector(".police-state").inner_text()
        page.wait_for_function("() => !document.body.classList.contains('flash')",
                               timeout=5000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-open-alarm.png"), full_page=True)

        # the guard acknowledges: the police timer is cancelled
        card.query_selector(".note").fill("Đã cử người tới")
        card.query_selector("button[data-action=ack]").click()
        page.wait_for_selector(f".alarm[data-id='{alarm_id}'].state-acknowledged", timeout=5000)
        assert "✓" in card.query_selector(".result").inner_text()
        doc, stored = _alarm_record(g, alarm_id)
        assert doc["state"] == "acknowledged"
        assert doc["escalations"] == []
        assert doc["history"][-1]["by"] == GUARD
        assert stored.get("escalate_at") is None
        page.wait_for_function(
            "name => [...document.querySelectorAll('#history .h-by')]"
            ".some(e => e.textContent.includes(name))", arg=GUARD, timeout=3000)
        assert hotline.requests() == []

        # the gateway stops: the banner shows; it restarts: the page recovers
        g.stop()
        page.wait_for_selector("#banner", state="visible", timeout=5000)
        assert page.inner_text("#banner") == LOST
        g = gateway_thread(config).start()
        page.wait_for_selector("#banner", state="hidden", timeout=10000)
        page.wait_for_selector("#login-form", state="visible", timeout=5000)
        _login(page)
        page.wait_for_selector(f".alarm[data-id='{alarm_id}'].state-acknowledged", timeout=5000)

        # "Call police now" reaches the police hotline
        card = page.query_selector(f".alarm[data-id='{alarm_id}']")
        card.query_selector("button[data-action=escalate]").click()
        page.wait_for_selector(f".alarm[data-id='{alarm_id}'] .result.ok", timeout=5000)
        assert hotline.wait_for(lambda h: len(h.deliveries()) >= 1, timeout=15)
        delivery = hotline.deliveries()[0]
        assert delivery.body is not None and delivery.body["alarm_id"] == alarm_id
        assert delivery.body["acknowledged_locally"] is True
        page.wait_for_selector(f".alarm[data-id='{alarm_id}'] .police.p-sent", timeout=5000)
        page.close()
