"""The injected clock: everything that waits reads time from here, so tests can run it fast."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    """Real time: ``monotonic()`` for durations, ``wall()`` for timestamps (unix seconds)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; for sans-I/O tests of timers."""

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_790_000_000.0) -> None:
        self._mono = start
        self._wall = wall_start

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone (negative: back), as NTP or ``date`` does; the
        monotonic clock runs on undisturbed."""
        self._wall += seconds


class SteppedClock:
    """Real time whose wall clock a test or the simulator can step (as NTP or a
    technician's ``date`` does on a Pi without an RTC) while monotonic time runs on."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time() + self.offset_s

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock by ``seconds`` (negative: back)."""
        self.offset_s += seconds


def rfc3339(unix_seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-23T19:42:05.123Z`` (SPEC §3)."""
    dt = datetime.fromtimestamp(unix_seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Unix seconds from an RFC 3339 timestamp (the inverse of :func:`rfc3339`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
