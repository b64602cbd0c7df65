"""Fixtures for the receiver's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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
