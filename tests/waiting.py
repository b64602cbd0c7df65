"""The one way a test waits: poll a condition until it holds, with a bounded timeout.

A test waits for what the user would see (an event journaled, a state published, a pin
lit), never for a fixed time: ``poll_until`` returns the condition's first truthy value, or
fails the test with ``what`` once ``timeout`` seconds have passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
STEP_S = 0.02


def poll_until(condition: Callable[[], T], timeout: float = 10.0, step: float = STEP_S, *,
               what: str = "condition") -> T:
    """Call ``condition`` every ``step`` seconds until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout:g} s")
        time.sleep(step)


async def apoll_until(condition: Callable[[], T], timeout: float = 10.0,
                      step: float = STEP_S, *, what: str = "condition") -> T:
    """:func:`poll_until` for a test running on the event loop (it never blocks the loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout:g} s")
        await asyncio.sleep(step)
