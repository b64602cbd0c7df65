"""Password checks in a process of their own, at a lower CPU priority than the gateway.

An argon2id check takes ~65 MiB and ~0.2 s of *every* core it can get (the hash's
parallelism, 4 lanes by default): in a thread of the gateway it starves the event loop that
carries the alarms, however small its pool. A child process started with ``spawn`` (never
``fork`` from a threaded gateway) and ``nice``-d by :data:`NICE` gives the kernel the choice:
the gateway runs first, a login waits. This module imports only argon2, so the child starts
in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

NICE = 10
PR_SET_PDEATHSIG = 1

_HASHER = PasswordHasher()


def lower_priority(parent: int) -> None:
    """The worker's initializer: below the gateway in the scheduler's eyes, and gone as soon
    as the gateway is (a SIGKILL-ed gateway must not leave argon2 workers behind)."""
    try:
        os.nice(NICE)
    except OSError:  # not allowed to change: the check still runs, at the same priority
        pass
    _die_with(parent)


def _die_with(parent: int) -> None:
    """Linux: ask the kernel for SIGKILL when the parent dies; everywhere: a thread that
    exits when the parent has gone (this process is then re-parented)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the gateway died before we got here
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def verify(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored`` (its parameters come from the hash)."""
    try:
        return bool(_HASHER.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
