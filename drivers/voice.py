"""A voice call that wakes the officer: dial, let it ring, hang up, say what happened.

An SMS at 3 a.m. wakes nobody; a ringing phone does. The call carries no speech: it only
makes the officer look at the phone, where the SMS says what and where. On the line
(3GPP TS 27.007, V.250): ``ATD<number>;`` starts a voice call (``OK`` at once, the
semicolon keeps the modem in command mode), ``AT+CLCC`` lists the current calls and their
state (2 dialling, 3 alerting, 0 active), ``AT+CHUP`` (or ``ATH`` where refused) hangs up.
The outcome is read from the unsolicited result codes (``BUSY``, ``NO ANSWER``, ``NO
CARRIER``, SIMCom's ``VOICE CALL: BEGIN`` / ``END``) and from ``+CLCC``:

- ``answered``: the call became active (the officer picked up); we hang up at once;
- ``busy``: the network said ``BUSY``;
- ``no_answer``: it rang for the whole ``ring_s`` (we hung up) or the network gave up;
- ``no_carrier``: the call ended without being answered (rejected, unreachable);
- ``error``: the modem refused to dial (no network, no SIM, no voice service);
- ``stopped``: no longer wanted while it rang (the police answered the SMS): hung up.

:class:`CallTracker` is the sans-I/O judge; :func:`place_call` drives it on a modem that
offers ``at(command)`` and a queue of call URCs (:class:`drivers.modem.Modem`). Voice
needs VoLTE on the module and the SIM now that 2G is gone in Vietnam (or 3G while it lasts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from drivers.at import Response, Urc, fields

CALL_URCS = frozenset({"BUSY", "NO ANSWER", "NO CARRIER", "NO DIALTONE", "VOICE CALL", "+CLCC"})
"""The unsolicited lines a call's outcome is read from (``name`` of :class:`drivers.at.Urc`)."""


class CallOutcome(StrEnum):
    """How a call ended (the values are journaled as the attempt's status)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    NO_CARRIER = "no_carrier"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class CallResult:
    """How one call ended: ``rang_s`` from dialling to the outcome; ``detail`` says more
    (the modem's refusal, who hung up)."""

    number: str
    outcome: CallOutcome
    rang_s: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CurrentCall:
    """One ``+CLCC`` line: ``stat`` 0 active, 1 held, 2 dialling, 3 alerting, 4 incoming,
    5 waiting, 6 disconnecting; ``outgoing`` is ``<dir>`` 0 (mobile originated)."""

    idx: int
    outgoing: bool
    stat: int
    number: str


ACTIVE, DIALING, ALERTING = 0, 2, 3
HANG_UP_S = 3.0  # the longest a hang-up may take before the call is left to the network


def parse_clcc(lines: Sequence[str]) -> list[CurrentCall]:
    """The calls in an ``AT+CLCC`` answer (or one ``+CLCC`` URC); malformed lines skipped."""
    calls = []
    for line in lines:
        head, sep, args = line.partition(":")
        if not sep or head.strip().upper() != "+CLCC":
            continue
        values = fields(args)
        try:
            idx, direction, stat = int(values[0]), int(values[1]), int(values[2])
        except (IndexError, ValueError):
            continue
        calls.append(CurrentCall(idx, direction == 0, stat, values[5] if len(values) > 5 else ""))
    return calls


class CallTracker:
    """Judges one outgoing call from what the modem says; :attr:`outcome` once decided."""

    EMPTY_GRACE = 2  # +CLCC lists without our call before it counts as ended unseen

    def __init__(self) -> None:
        self.outcome: CallOutcome | None = None
        self.detail = ""
        self.answered = False
        self.seen = False
        self.ended = False  # the modem said the call is over: nothing to hang up
        self._empty = 0

    @property
    def up(self) -> bool:
        """The call may still be up on the line (hang up before leaving)."""
        return not self.ended

    def urc(self, urc: Urc) -> None:
        name = urc.name.upper()
        if name == "+CLCC":
            self.calls(parse_clcc([urc.line]), unsolicited=True)
        elif name == "VOICE CALL":
            if urc.args.upper().startswith("BEGIN"):
                self._answer("picked up")
            elif urc.args.upper().startswith("END"):
                self._end("call ended")
        elif name == "BUSY":
            self.ended = True
            self._decide(CallOutcome.BUSY, "BUSY")
        elif name == "NO ANSWER":
            self.ended = True
            self._decide(CallOutcome.NO_ANSWER, "NO ANSWER from the network")
        elif name in ("NO CARRIER", "NO DIALTONE"):
            self._end(name)

    def calls(self, calls: list[CurrentCall], *, unsolicited: bool = False) -> None:
        ours = [c for c in calls if c.outgoing]
        if any(c.stat == ACTIVE for c in ours):
            self._answer("active in +CLCC")
        elif ours:
            self.seen = True
            self._empty = 0
        elif not unsolicited:
            self._empty += 1
            if self.seen or self._empty >= self.EMPTY_GRACE:
                self._end("no call in +CLCC")

    def stop(self) -> None:
        """No longer wanted: the caller hangs up."""
        self._decide(CallOutcome.STOPPED, "no longer needed, hung up")

    def ring_over(self) -> None:
        """``ring_s`` passed: the caller hangs up; unanswered, that is ``no_answer``."""
        self._decide(CallOutcome.NO_ANSWER, "rang out, hung up")

    def _answer(self, why: str) -> None:
        self.answered = self.seen = True
        self._decide(CallOutcome.ANSWERED, why)

    def _end(self, why: str) -> None:
        self.ended = True
        self._decide(CallOutcome.ANSWERED if self.answered else CallOutcome.NO_CARRIER, why)

    def _decide(self, outcome: CallOutcome, why: str) -> None:
        if self.outcome is None:
            self.outcome, self.detail = outcome, why


class VoiceModem(Protocol):
    """What :func:`place_call` needs of the modem."""

    async def at(self, command: str) -> Response: ...

    def call_urcs(self) -> asyncio.Queue[Urc]: ...


async def place_call(modem: VoiceModem, number: str, ring_s: float, *,
                     monotonic: Callable[[], float], poll_s: float = 1.0,
                     wanted: Callable[[], bool] = lambda: True) -> CallResult:
    """Dial ``number``, let it ring up to ``ring_s`` seconds, hang up; the outcome.
    ``wanted`` is asked at every poll: once false, the call is hung up (``stopped``).

    Every AT command is one short exchange, so an SMS to send or a ``+CMTI`` to read
    (the police reply) goes between two ``+CLCC`` polls: a ringing call blocks neither."""
    start = monotonic()
    urcs = modem.call_urcs()
    tracker = CallTracker()
    try:
        dial = await modem.at(f"ATD{number};")
    except Exception as exc:  # the modem offline or silent: no call, said why
        return CallResult(number, CallOutcome.ERROR, 0.0, str(exc)[:200])
    if not dial.final.ok:
        word = dial.final.kind
        outcome = {"BUSY": CallOutcome.BUSY, "NO ANSWER": CallOutcome.NO_ANSWER,
                   "NO CARRIER": CallOutcome.NO_CARRIER}.get(word, CallOutcome.ERROR)
        detail = str(dial.final.error(f"ATD{number};")) if outcome == CallOutcome.ERROR else word
        return CallResult(number, outcome, round(monotonic() - start, 3), detail)
    try:
        while tracker.outcome is None:
            left = start + ring_s - monotonic()
            if left <= 0:
                tracker.ring_over()
                break
            if not wanted():
                tracker.stop()
                break
            try:
                async with asyncio.timeout(min(poll_s, left)):
                    tracker.urc(await urcs.get())
                continue
            except TimeoutError:
                pass
            answer = await modem.at("AT+CLCC")
            if answer.final.ok:
                tracker.calls(parse_clcc(answer.lines))
    finally:
        rang = round(monotonic() - start, 3)
        if tracker.up:  # bounded: on shutdown the modem may already be gone
            with contextlib.suppress(Exception):
                async with asyncio.timeout(HANG_UP_S):
                    await _hang_up(modem)
    return CallResult(number, tracker.outcome or CallOutcome.ERROR, rang, tracker.detail)


async def _hang_up(modem: VoiceModem) -> Any:
    """``AT+CHUP`` ends a voice call on current modules; ``ATH`` where it is refused."""
    answer = await modem.at("AT+CHUP")
    return answer if answer.final.ok else await modem.at("ATH")
