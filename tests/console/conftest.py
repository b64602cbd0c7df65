"""Fixtures for the console's browser test: a whole gateway in a thread, and Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from console.console_helpers import CHROMIUM, CHROMIUM_ARGS, GatewayThread


@pytest.fixture
def gateway_thread() -> Iterator[type[GatewayThread]]:
    started: list[GatewayThread] = []

    class Tracked(GatewayThread):
        def start(self, timeout: float = 15.0) -> GatewayThread:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for g in started:
        g.stop()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's), driven by Playwright's sync API."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield browser
        finally:
            browser.close()
