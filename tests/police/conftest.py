"""Fixtures for the receiver's tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from police.police_helpers import ReceiverThread, write_config


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Callable[..., ReceiverThread]]:
    """``receiver(**config)`` starts a receiver thread; all are stopped after the test."""
    started: list[ReceiverThread] = []

    def start(config: Path | None = None, **kwargs: object) -> ReceiverThread:
        thread = ReceiverThread(config or write_config(tmp_path, **kwargs))  # type: ignore[arg-type]
        started.append(thread)
        return thread.start()

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's), driven by Playwright's sync API."""
    from console.console_helpers import CHROMIUM, CHROMIUM_ARGS

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
