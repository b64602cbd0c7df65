"""Password checks in a process of their own, at a lower CPU priority than the gateway.

An argon2id check takes ~65 MiB and ~0.2 s of *every* core it can get (the hash's
parallelism, 4 lanes by default): in a thread of the gateway it starves the event loop that
carries the alarms, however small its pool. A child process started with ``spawn`` (never
``fork`` from a threaded gateway) and ``nice``-d by :data:`NICE` gives the kernel the choice:
the gateway runs first, a login waits. This module imports only argon2, so the child starts
in a fraction of a second.
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

NICE = 10

_HASHER = PasswordHasher()


def lower_priority() -> None:
    """The worker's initializer: below the gateway in the scheduler's eyes."""
    try:
        os.nice(NICE)
    except OSError:  # not allowed to change: the check still runs, at the same priority
        pass


def verify(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored`` (its parameters come from the hash)."""
    try:
        return bool(_HASHER.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
