"""Runs the gateway's long-lived tasks; the first one that ends stops the whole gateway.

A gateway that runs on half its parts looks healthy while presses are lost, so any task that
raises, returns or is cancelled by someone else is a failure of the gateway: the composition
root journals the reason, says ``offline`` and exits 1, and systemd starts a fresh process.

Why not a bare ``asyncio.TaskGroup`` (see docs/reliability.md): when a child fails, a
TaskGroup cancels its own body, so the stop path (journal the reason, publish ``offline``)
never runs; and it then waits without bound for every child, while on Python 3.11 a child
can swallow its cancellation (``asyncio.wait_for`` racing a result, as aiomqtt's connect
does) and stay ``cancelling()`` for ever. The supervisor instead returns the first failure,
cancels the rest again and again until a deadline, and names the tasks that would not end.

``inject`` puts a fault into a running task (simulation and tests only): it is delivered as
a cancellation at the task's current ``await``, so the task's own clean-up runs, and then
becomes an exception, a normal return, a task that ignores every further cancellation, or
one that blocks the whole event loop (only the hard deadline of :mod:`gateway.ops.stopping`
ends that process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.core.errors import CommandError, GatewayError

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Coroutine[Any, Any, None]]
#: how long a :attr:`Fault.BLOCK` holds the event loop (far past any stop deadline)
BLOCK_S = 600.0


class Fault(StrEnum):
    """What :meth:`Supervisor.inject` makes of a task."""

    RAISE = "raise"  # the task dies with an exception
    RETURN = "return"  # the task returns as if its work were done
    HANG = "hang"  # the task ignores every cancellation from now on (a stuck task)
    BLOCK = "block"  # the task blocks the event loop itself (a blocking call gone wrong)


class InjectedFault(GatewayError, RuntimeError):
    """The exception a :attr:`Fault.RAISE` injection ends a task with."""


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """Which task ended and why, in words for the log line and the ``trouble`` event."""

    task: str
    reason: str

    def line(self) -> str:
        return f"task {self.task!r} {self.reason}"


class TaskFailed(GatewayError, RuntimeError):
    """The gateway stopped because one of its tasks ended (exit code 1)."""

    def __init__(self, failure: TaskFailure) -> None:
        self.failure = failure
        super().__init__(f"stopped: {failure.line()}")


@dataclass(frozen=True, slots=True)
class _Entry:
    factory: TaskFactory
    one_shot: bool


class Supervisor:
    """The gateway's tasks by name. ``add`` before :meth:`run_until`; nothing runs before."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._faults: dict[str, Fault] = {}

    def add(self, name: str, factory: TaskFactory, *, one_shot: bool = False) -> None:
        """Run ``factory()`` as task ``name``; ``one_shot`` tasks may finish normally."""
        if name in self._entries:
            raise ValueError(f"two tasks named {name!r}")
        self._entries[name] = _Entry(factory, one_shot)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def running(self) -> list[str]:
        return [name for name, task in self._tasks.items() if not task.done()]

    async def run_until(self, stop: asyncio.Event) -> TaskFailure | None:
        """Start every task; return None when ``stop`` is set, or the first failure."""
        for name, entry in self._entries.items():
            self._tasks[name] = asyncio.create_task(self._guarded(name, entry.factory), name=name)
        stopper = asyncio.create_task(stop.wait(), name="stop")
        watched: set[asyncio.Future[Any]] = {stopper, *self._tasks.values()}
        try:
            while True:
                done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    return None
                for task in done:
                    watched.discard(task)
                    failure = self._failure(task)
                    if failure is not None:
                        return failure
        finally:
            stopper.cancel()

    def _failure(self, task: asyncio.Future[Any]) -> TaskFailure | None:
        name = task.get_name() if isinstance(task, asyncio.Task) else "?"
        if task.cancelled():
            return TaskFailure(name, "was cancelled")
        exc = task.exception()
        if exc is not None:
            return TaskFailure(name, f"failed: {type(exc).__name__}: {exc}")
        if self._entries[name].one_shot:
            return None
        return TaskFailure(name, "ended")

    async def cancel_all(self, within_s: float) -> list[str]:
        """Cancel every task, again and again, for at most ``within_s`` seconds; return the
        names of those still running (they are abandoned: the process exits anyway)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            pending = [t for t in self._tasks.values() if not t.done()]
            left = deadline - loop.time()
            if not pending or left <= 0:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=min(0.2, left))
        for name, task in self._tasks.items():  # say what else failed, not "never retrieved"
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("event=task_also_failed task=%s error=%r", name, str(task.exception()))
        return [t.get_name() for t in self._tasks.values() if not t.done()]

    def inject(self, name: str, fault: Fault) -> None:
        """Put ``fault`` into running task ``name`` (simulation and tests only)."""
        task = self._tasks.get(name)
        if task is None or task.done():
            raise CommandError(f"no running task {name!r}; running: {', '.join(self.running())}")
        self._faults[name] = fault
        task.cancel()

    async def _guarded(self, name: str, factory: TaskFactory) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            fault = self._faults.pop(name, None)
            if fault is None:
                raise
            log.warning("event=fault_injected task=%s fault=%s", name, fault)
            if fault is Fault.RAISE:
                raise InjectedFault(f"fault injected into {name}") from None
            if fault is Fault.HANG:
                await _ignore_cancellation()
            if fault is Fault.BLOCK:
                await asyncio.sleep(0.2)  # the control command's answer goes out first
                time.sleep(BLOCK_S)  # noqa: ASYNC251 (the point of the fault)


async def _ignore_cancellation() -> None:
    """What a stuck task does: swallow every cancellation, for ever."""
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
