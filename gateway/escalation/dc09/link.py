"""The DC-09 TCP adapter: one receiving centre, one message exchange per connection.

Each exchange opens a connection, writes one framed message, reads one answer line and
closes (DC-09 allows both this and a kept connection; a fresh one never inherits a half-read
answer). The protocol decisions stay sans-I/O in :mod:`.codec`; this module only moves
bytes, keeps time and retries:

* ``ACK`` (encrypted when we encrypted, echoing our sequence number): delivered.
* ``NAK``: our time stamp was outside the receiver's window. Its own time stamp gives the
  offset to add to our clock from now on, and the message is resent at once (same number).
* ``DUH``: understood but not processable: retrying the same message cannot help.
* no answer, a garbled one, a refused connection: retried with capped, jittered backoff,
  like the HTTP hotline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from gateway.core.clock import SystemClock, rfc3339
from gateway.core.ports import Clock
from gateway.escalation.dc09.codec import (
    MAX_ANSWER,
    AnswerKind,
    Dc09Error,
    Identity,
    SiaEvent,
    decode_answer,
    encode,
)
from gateway.escalation.wire import RetryPolicy, StopReason

log = logging.getLogger(__name__)

NAK_RESENDS = 2  # resends after a NAK within one attempt before it counts as failed
CLOCK_STEP_S = 1.5  # seconds: a smaller difference is the NAK stamp's whole-second rounding

class AttemptCallback(Protocol):
    """Awaited after every attempt: its number, the answer or the error, whether another
    attempt follows and after how many seconds."""

    async def __call__(self, attempt: int, label: str, /, *, will_retry: bool,
                       delay_s: float) -> None: ...


class LinkTestResult(Protocol):
    """Awaited after every link test: ``ok`` (ACK or RSP) and one line saying what came."""

    async def __call__(self, *, ok: bool, detail: str) -> None: ...


class Outcome(StrEnum):
    """How :meth:`Dc09Link.deliver` ended."""

    DELIVERED = "delivered"  # ACK (or RSP)
    REFUSED = "refused"  # DUH: the same message would be refused again
    GAVE_UP = "gave_up"  # attempts ran out; still owed
    LATE = "late"  # the caller's deadline passed; still owed


@dataclass(frozen=True, slots=True)
class Dc09Result:
    """``detail`` is one line for the journal; ``at`` the RFC 3339 time of the ACK."""

    outcome: Outcome
    attempts: int
    detail: str
    at: str | None = None


@dataclass(frozen=True, slots=True)
class Try:
    """One attempt: the answer that settled it, or why there was none."""

    answer: AnswerKind | None
    error: str | None = None

    @property
    def label(self) -> str:
        return str(self.answer) if self.answer is not None else f"error: {self.error}"


class Dc09Link:
    """One receiver (``host``:``port``) under one :class:`Identity`.

    ``timeout_s`` bounds a whole exchange (connect, send, answer), in seconds. The clock
    offset learnt from NAKs (``offset_s``, seconds added to our wall clock) is kept for
    every later message to this receiver.
    """

    def __init__(self, name: str, host: str, port: int, identity: Identity, *,
                 timeout_s: float = 10.0, policy: RetryPolicy | None = None,
                 clock: Clock | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rand: Callable[[], float] = random.random,
                 pad: Callable[[int], str] | None = None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.identity = identity
        self.timeout_s = timeout_s
        self.policy = policy or RetryPolicy()
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep
        self._rand = rand
        self._pad = pad
        self.offset_s = 0.0
        self.naks = 0
        self.failures = 0  # failed attempts in a row
        self.last_ok: str | None = None
        self.last_error: str | None = None

    def health(self) -> dict[str, Any]:
        """For ``gateway/health``: where, whether encrypted, last ACK, failures in a row."""
        return {"host": self.host, "port": self.port, "account": self.identity.account,
                "encrypted": self.identity.key is not None, "last_ack": self.last_ok,
                "consecutive_failures": self.failures, "last_error": self.last_error,
                "naks": self.naks, "clock_offset_s": round(self.offset_s, 1)}

    async def deliver(self, seq: int, event: SiaEvent | None, *,
                      on_attempt: AttemptCallback | None = None,
                      deadline_s: float | None = None) -> Dc09Result:
        """Send until ACK, DUH, the policy's attempt limit or ``deadline_s`` (seconds from
        now): every attempt carries the same ``seq``."""
        started = self._clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            result = await self.attempt(seq, event)
            if result.answer is not None:
                if on_attempt is not None:
                    await on_attempt(attempt, result.label, will_retry=False, delay_s=0.0)
                return self._settled(result.answer, attempt)
            delay = self.policy.delay_s(attempt, None, self._rand())
            stop = self.policy.stop(attempt, elapsed_s=self._clock.monotonic() - started,
                                    delay_s=delay, deadline_s=deadline_s)
            if on_attempt is not None:
                await on_attempt(attempt, result.label, will_retry=stop is None,
                                 delay_s=0.0 if stop else delay)
            if stop is not None:
                outcome = Outcome.LATE if stop.reason is StopReason.LATE else Outcome.GAVE_UP
                return Dc09Result(outcome, attempt, f"{stop.text}; last: {result.error}")
            await self._sleep(delay)

    async def attempt(self, seq: int, event: SiaEvent | None) -> Try:
        """One attempt: send, and resend after a NAK (up to :data:`NAK_RESENDS` times)."""
        for _ in range(NAK_RESENDS + 1):
            frame = encode(self.identity, seq, event, now=self._clock.wall() + self.offset_s,
                           pad=self._pad)
            try:
                answer = decode_answer(await self.exchange(frame), self.identity)
            except (OSError, TimeoutError, EOFError, Dc09Error) as exc:
                return self._failed(_describe(exc))
            if answer.kind == AnswerKind.NAK:
                if answer.timestamp is None:
                    return self._failed("NAK without a time stamp")
                self.naks += 1
                offset = answer.timestamp - self._clock.wall()
                if abs(offset - self.offset_s) >= CLOCK_STEP_S:  # not just the whole-second stamp
                    self.offset_s = offset
                log.warning("dc09 %s NAK: clock offset now %.1f s, resending seq %04d",
                            self.name, self.offset_s, seq)
                continue
            problem = self._mismatch(answer.kind, answer.seq, seq, encrypted=answer.encrypted)
            if problem:
                return self._failed(problem)
            self.failures, self.last_error = 0, None
            self.last_ok = rfc3339(self._clock.wall())
            return Try(answer.kind)
        return self._failed("NAK after resynchronising the time stamp")

    async def exchange(self, frame: bytes) -> bytes:
        """Connect, write ``frame``, read one answer line (up to ``<CR>``), close."""
        async with asyncio.timeout(self.timeout_s):
            reader, writer = await asyncio.open_connection(self.host, self.port,
                                                           limit=MAX_ANSWER)
            try:
                writer.write(frame)
                await writer.drain()
                return await _read_answer(reader)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    def _mismatch(self, kind: AnswerKind, got: int, seq: int, *, encrypted: bool) -> str | None:
        if got != seq:
            return f"{kind} for sequence {got:04d}, not {seq:04d}"
        if kind == AnswerKind.ACK and self.identity.key is not None and not encrypted:
            return "unencrypted ACK to an encrypted message"
        return None

    def _failed(self, error: str) -> Try:
        self.failures += 1
        self.last_error = error
        log.info("dc09 %s attempt failed: %s", self.name, error)
        return Try(None, error)

    def _settled(self, answer: AnswerKind, attempt: int) -> Dc09Result:
        if answer == AnswerKind.DUH:
            return Dc09Result(Outcome.REFUSED, attempt, "DUH: the receiver cannot process it")
        return Dc09Result(Outcome.DELIVERED, attempt, str(answer), self.last_ok)



async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    """One answer line; leading blank ``<LF><CR>`` lines are skipped."""
    for _ in range(4):
        try:
            line = await reader.readuntil(b"\r")
        except asyncio.IncompleteReadError as exc:
            raise EOFError("connection closed without an answer") from exc
        except asyncio.LimitOverrunError as exc:
            raise Dc09Error(f"answer over {MAX_ANSWER} bytes") from exc
        if line.strip(b"\r\n\x00 "):
            return line
    raise Dc09Error("only empty answers (the receiver rejected the message's CRC?)")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout: no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200] if isinstance(exc, OSError) else text[:200]


async def link_tests(link: Dc09Link, interval_s: float, next_seq: Callable[[], Awaitable[int]],
                     on_result: LinkTestResult,
                     sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
    """Send a ``NULL`` every ``interval_s`` seconds until cancelled; ``on_result(ok,
    detail)`` after each (a failure is a trouble of the gateway, like a hotline failure)."""
    while True:
        await sleep(interval_s)
        seq = await next_seq()
        result = await link.attempt(seq, None)
        ok = result.answer in (AnswerKind.ACK, AnswerKind.RSP)
        await on_result(ok=ok, detail="ACK" if ok else f"link test {seq:04d}: {result.label}")
