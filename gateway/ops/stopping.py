"""Stopping within a bounded time, whatever the gateway's tasks are doing.

SIGTERM (systemd's stop) and SIGINT set the gateway's ``stop`` event. From that moment, and
from the moment the gateway begins to stop on its own (a task failed), a hard deadline runs
in a thread of its own: if the process has not ended :data:`DEADLINE_S` seconds later (a
task that ignores cancellation, a worker thread stuck in a blocking call), it writes one log
line and ends with ``os._exit(1)``. Nothing committed is lost: every journal commit is
durable when it returns (SQLite WAL, ``synchronous=FULL``). A second signal ends the process
at once.

The handlers are installed with :func:`signal.signal`, not ``loop.add_signal_handler``: the
latter runs only when the event loop gets round to it, which a task hogging the loop would
prevent, while a Python-level handler runs between any two bytecodes of the main thread.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

#: seconds from SIGTERM (or a task failure) to the hard exit: systemd's stop, and the
#: issue's promise, is 5 s
DEADLINE_S = 4.5
EXIT_HARD = 1


class StopDeadline:
    """Ends the process ``deadline_s`` seconds after :meth:`arm`, unless it ended first."""

    def __init__(self, deadline_s: float = DEADLINE_S) -> None:
        self.deadline_s = deadline_s
        self._armed = threading.Event()

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    def arm(self, why: str) -> None:
        if self._armed.is_set():
            return
        self._armed.set()
        threading.Thread(target=self._expire, args=(why, self.deadline_s), daemon=True,
                         name="stop-deadline").start()

    def now(self, why: str) -> None:
        """End the process at once (a second signal)."""
        self._expire(why, 0.0)

    @staticmethod
    def _expire(why: str, after_s: float) -> None:
        time.sleep(after_s)
        # the log line could block (a full stdout pipe, a lock held by the stuck thread):
        # a second timer ends the process regardless
        _exit_soon(0.3)
        line = (f"ts={_now()} level=error logger={__name__} event=hard_exit "
                f"reason=\"{why}\" after_s={after_s:g}\n")
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os._exit(EXIT_HARD)


def _exit_soon(after_s: float) -> None:
    def later() -> None:
        time.sleep(after_s)
        os._exit(EXIT_HARD)

    threading.Thread(target=later, daemon=True, name="stop-deadline-last").start()


def _now() -> str:
    from gateway.core.clock import rfc3339

    return rfc3339(time.time())


async def run_until_signal(run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
                           stopping: asyncio.Event,
                           deadline: StopDeadline | None = None) -> int:
    """``await run(stop)`` with ``stop`` set by SIGTERM/SIGINT and the hard deadline armed
    by a signal or by ``stopping`` (the gateway began to stop on its own); 0 when ``run``
    returned."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    limit = deadline or StopDeadline()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        why = f"{signal.Signals(signum).name} and the gateway did not stop in time"
        if limit.armed:
            limit.now(f"second {signal.Signals(signum).name}")
        limit.arm(why)
        loop.call_soon_threadsafe(stop.set)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    async def arm_on_stopping() -> None:
        await stopping.wait()
        limit.arm("the gateway stopped on its own and did not end in time")

    watcher = asyncio.create_task(arm_on_stopping(), name="stop-deadline")
    try:
        await run(stop)
    finally:
        watcher.cancel()
    return 0
