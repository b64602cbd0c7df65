"""One backoff for every retry loop: the broker reconnect, the hotline and DC-09 retries, the
SMS resends and the serial ports' reopen loops.

The delay after failed attempt ``n`` (1-based) is ``min(cap_s, first_s * factor**(n-1))``,
of which the last ``jitter`` fraction is random: many gateways coming back after an outage
must not retry in step, while a loop that only waits for a cable (``jitter`` 0) stays
predictable. :class:`Backoff` is the frozen policy; :meth:`Backoff.counter` gives a loop its
own attempt count to advance and reset.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

MAX_EXPONENT = 64  # factor**64 already exceeds any cap: no float overflow on long outages


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff (seconds) with a ``jitter`` fraction in ``[0, 1]``."""

    first_s: float = 1.0
    cap_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        if self.first_s < 0 or self.cap_s < 0 or self.factor < 1:
            raise ValueError("first_s and cap_s must be >= 0 and factor >= 1")

    def ceiling_s(self, attempt: int) -> float:
        """The longest wait after failed ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), MAX_EXPONENT)
        return min(self.cap_s, self.first_s * self.factor**exponent)

    def delay_s(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed ``attempt`` (1-based); ``rand`` is uniform in
        ``[0, 1)`` (passed in, so the caller and its tests choose the randomness)."""
        ceiling = self.ceiling_s(attempt)
        return ceiling * (1.0 - self.jitter) + ceiling * self.jitter * rand

    def counter(self, rand: Callable[[], float] = random.random) -> BackoffCounter:
        """A fresh attempt count for one loop."""
        return BackoffCounter(self, rand)


class BackoffCounter:
    """One loop's failures in a row: :meth:`next` is the wait after another failure,
    :meth:`reset` starts over after a success."""

    def __init__(self, backoff: Backoff, rand: Callable[[], float] = random.random) -> None:
        self.backoff = backoff
        self.failures = 0
        self._rand = rand

    def next(self) -> float:
        """Count one more failure and return the seconds to wait before trying again."""
        self.failures += 1
        return self.backoff.delay_s(self.failures, self._rand())

    def reset(self) -> None:
        """A success: the next failure waits ``first_s`` again."""
        self.failures = 0
