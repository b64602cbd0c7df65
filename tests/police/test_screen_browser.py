"""The wall screen end to end in real headless Chromium: a real receiver serves the page; two
hospitals' alarms arrive over signed HTTP; the officer takes one and the ack reaches that
hospital's poll only; a silent hospital goes "mất liên lạc"; the receiver restarts and the
screen comes back by itself, still logged in. Bounded waits on the DOM; no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from police.police_helpers import (
    OFFICER,
    OFFICER_PASSWORD,
    OFFICER_SHOWN,
    SITES,
    ReceiverThread,
    escalation,
    poll,
    post,
)
from police.police_helpers import (
    page as ack_page,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LOST = "MẤT KẾT NỐI VỚI MÁY CHỦ TIẾP NHẬN — màn hình không còn cập nhật"
SECRET_A, SECRET_B = SITES["bv-a"][1], SITES["bv-b"][1]


class _Heartbeat:
    """Keeps sites alive with ack polls (as their gateways would) until told to stop."""

    def __init__(self, rx: Callable[[], ReceiverThread], sites: dict[str, bytes]) -> None:
        self.rx, self.sites = rx, dict(sites)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.4):
            for site, secret in list(self.sites.items()):
                try:
                    poll(self.rx().base, site, secret)
                except OSError:
                    pass  # the receiver is restarting

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(5)


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_officer_takes_alarms_on_the_wall_screen(chromium: Any,
                                                 receiver: Callable[..., ReceiverThread],
                                                 tmp_path: Path) -> None:
    from police.police_helpers import write_config

    config = write_config(tmp_path, supervision_s=3, max_wait_s=1)
    current = [receiver(config)]
    with _Heartbeat(lambda: current[0], {"bv-a": SECRET_A, "bv-b": SECRET_B}) as beat:
        page = chromium.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(current[0].screen + "/")
        page.fill("#login-name", OFFICER)
        page.fill("#login-password", OFFICER_PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#no-alarms", state="visible", timeout=5000)
        page.wait_for_selector(".site.link-ok", timeout=5000)

        # two hospitals' alarms ring on the screen
        a = post(current[0].base, escalation("bv-a", code="0427"), SECRET_A).json()["ref"]
        post(current[0].base, escalation("bv-b", code="1592", type_="duress"), SECRET_B)
        page.wait_for_function("() => document.querySelectorAll('.alarm.state-new').length == 2",
                               timeout=2000)
        assert page.evaluate("document.body.classList.contains('alarming')")
        card = page.query_selector(f".alarm[data-ref='{a.rsplit('-', 1)[1]}']")
        assert card.query_selector(".hospital").inner_text() == "Bệnh viện Đa khoa A"
        assert card.query_selector(".ward").inner_text() == "Khoa Cấp cứu"
        assert card.query_selector(".code").inner_text() == "Mã 0427"

        # the officer takes the first: it stops ringing, and only bv-a hears of it
        card.query_selector("button[data-action=take]").click()
        page.wait_for_selector(f".alarm[data-ref='{a.rsplit('-', 1)[1]}'].state-police_acknowledged",
                               timeout=5000)
        assert OFFICER_SHOWN in card.query_selector(".state").inner_text()
        acks = ack_page(poll(current[0].base, "bv-a", SECRET_A)).acks
        assert [(x.code, x.state, x.by) for x in acks] == [("0427", "police_acknowledged",
                                                            OFFICER_SHOWN)]
        assert ack_page(poll(current[0].base, "bv-b", SECRET_B)).acks == ()

        # bv-b falls silent: "mất liên lạc", with the button to acknowledge it
        del beat.sites["bv-b"]
        page.wait_for_selector(".site.link-lost[data-site='bv-b']", timeout=8000)
        assert "MẤT LIÊN LẠC" in page.inner_text(".site.link-lost[data-site='bv-b']")
        page.wait_for_function("() => document.querySelector('#history .h-link_lost') !== null",
                               timeout=3000)
        _screenshot(page, "receiver-wall-screen.png")

        # English on request
        page.click("#lang")
        assert "Received" in card.query_selector(".state").inner_text()
        assert "LINK LOST" in page.inner_text(".site.link-lost")
        page.click("#lang")

        # the receiver restarts: the banner, then the same screen back without a login
        current[0].stop()
        page.wait_for_selector("#banner", state="visible", timeout=20000)
        assert page.inner_text("#banner") == LOST
        current[0] = receiver(config)
        page.wait_for_selector("#banner", state="hidden", timeout=10000)
        assert page.is_hidden("#login")
        page.wait_for_selector(".alarm.state-police_acknowledged", timeout=5000)
        assert page.query_selector_all(".alarm.state-new")

        # a mass alarm: 30 cards drawn, the newest first, and a line counting the rest
        base = current[0].base
        with ThreadPoolExecutor(8) as pool:  # at once, as a mass alarm comes
            list(pool.map(lambda n: post(base, escalation("bv-a", code=f"{n:04d}"), SECRET_A),
                          range(33)))
        page.wait_for_function("() => document.querySelector('#alarm-count').textContent == '35'",
                               timeout=5000)
        assert len(page.query_selector_all(".alarm")) == 30
        assert len(page.query_selector_all(".alarm.state-new")) == 30  # untaken ones first
        assert page.inner_text("#more-alarms").startswith("… và 5 báo động cũ hơn")
        page.close()
