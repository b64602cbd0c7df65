"""A simulated alarm receiving centre (ARC): a DC-09 receiver showing what arrived.

It is the police receiver's DC-09 listener (:mod:`receiver.dc09`, parsing and answers by
pysiaalarm) with a log instead of a wall screen, so what it accepts is what a real
pysiaalarm-based receiver accepts. Faults for tests and the technician's console are queued
and consumed one message at a time: ``answer("nak")`` (a NAK with the ARC's time stamp),
``answer("duh")``, ``answer("silence")`` (no answer at all; the sender times out), each
``times`` times or until ``answer("ack")``. A sender whose clock is off by more than the
time window (``timeband_s``) is NAKed by pysiaalarm itself, as a real receiver would.

It runs its own event loop in a daemon thread, like the hotline simulator, so sync tests,
asyncio code and the simulator console use it alike; every method is thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from receiver.dc09 import Answer, Dc09Listener, Dc09Message, Dc09Refusal, PanelAccount


@dataclass(frozen=True, slots=True)
class Arrival:
    """One line the ARC read: the accepted message, or why it was refused; ``answer`` is
    what went back (``ACK``, ``NAK``, ``DUH``, ``silence``, or ``refused``)."""

    n: int
    at: float
    message: Dc09Message | None
    refusal: Dc09Refusal | None
    answer: str

    def line(self) -> str:
        """One line for the console."""
        when = time.strftime("%H:%M:%S", time.localtime(self.at))
        if self.message is None:
            reason = self.refusal.reason if self.refusal else "?"
            return f"{self.n:4d} {when} refused: {reason}"
        m = self.message
        zone = f" zone {m.zone}" if m.zone is not None else ""
        lock = " (AES)" if m.encrypted else ""
        text = f" {m.text}" if m.text else ""
        return (f"{self.n:4d} {when} #{m.account} seq {m.seq:04d} {m.kind} {m.code}{zone}"
                f"{text}{lock} -> {self.answer}")


class _Book:
    """The listener's handler: records arrivals, answers faults, wakes waiters."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.arrivals: list[Arrival] = []
        self.faults: deque[tuple[Answer, int | None]] = deque()

    def _add(self, message: Dc09Message | None, refusal: Dc09Refusal | None,
             answer: str) -> None:
        with self.lock:
            self.arrivals.append(Arrival(len(self.arrivals) + 1, time.time(), message,
                                         refusal, answer))
            self.lock.notify_all()

    def _next_answer(self) -> Answer:
        with self.lock:
            if not self.faults:
                return Answer.ACK
            answer, left = self.faults[0]
            if left is not None:
                if left <= 1:
                    self.faults.popleft()
                else:
                    self.faults[0] = (answer, left - 1)
            return answer

    async def received(self, message: Dc09Message) -> Answer:
        answer = self._next_answer()
        self._add(message, None, str(answer))
        return answer

    async def refused(self, refusal: Dc09Refusal) -> None:
        self._add(None, refusal, "refused")


class ArcServer:
    """The simulated ARC on ``host:port`` (0: a free one) accepting ``accounts``.

    ``timeband_s``: how far behind / ahead of its clock a time stamp may be (seconds).
    """

    def __init__(self, accounts: list[PanelAccount], *, host: str = "127.0.0.1",
                 port: int = 0, timeband_s: tuple[int, int] = (40, 20)) -> None:
        self.accounts = accounts
        self.host = host
        self.port = port
        self.timeband_s = timeband_s
        self._book = _Book()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: Dc09Listener | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> ArcServer:
        """Listen in a daemon thread; after :meth:`stop` it restarts on the same port."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name=f"arc:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._listener is None:
            raise RuntimeError(f"the simulated ARC could not listen on {self.host}:{self.port}")
        return self

    def _run(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        listener = Dc09Listener(self.accounts, self._book, host=self.host, port=self.port,
                                timeband_s=self.timeband_s)
        try:
            self._loop.run_until_complete(listener.start())
        except OSError:
            ready.set()
            return
        self._listener, self.port = listener, listener.port
        ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(listener.stop())
        self._loop.close()

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        self._loop = self._thread = self._listener = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> ArcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults -----------------------------------------------------------------------
    def answer(self, mode: str, times: int | None = 1) -> None:
        """Answer the next ``times`` messages (None: until told ``ack``) with ``mode``:
        ``nak``, ``duh``, ``silence``; ``ack`` clears every queued fault."""
        answer = Answer(mode.upper() if mode.lower() != "silence" else "silence")
        with self._book.lock:
            if answer == Answer.ACK:
                self._book.faults.clear()
            else:
                self._book.faults.append((answer, times))

    # -- what arrived -----------------------------------------------------------------
    def arrivals(self) -> list[Arrival]:
        with self._book.lock:
            return list(self._book.arrivals)

    def messages(self, code: str | None = None) -> list[Dc09Message]:
        """Accepted messages (with ``code`` only, when given), oldest first."""
        return [a.message for a in self.arrivals()
                if a.message is not None and (code is None or a.message.code == code)]

    def wait_for(self, predicate: Callable[[list[Arrival]], Any],
                 timeout: float = 10.0) -> list[Arrival]:
        """Block until ``predicate(arrivals)`` is true; AssertionError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._book.lock:
            while not predicate(list(self._book.arrivals)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the ARC did not see it in {timeout} s; arrivals: "
                                         f"{[a.line() for a in self._book.arrivals[-5:]]}")
                self._book.lock.wait(left)
            return list(self._book.arrivals)

    def health(self) -> dict[str, Any]:
        return self._listener.health() if self._listener is not None else {"running": False}
