"""Voice calls on the simulated modem, as a SIM7600 plays them on its AT port.

``ATD<number>;`` answers ``OK`` at once (``+CME ERROR: no network service`` when not
registered); the call is listed by ``AT+CLCC`` as dialling (2), then alerting (3) while
the phone rings, then active (0) once answered, with SIMCom's ``VOICE CALL: BEGIN``.
How the far end behaves is set per call (:meth:`VoiceLine.behave`): ``answer``, ``busy``
(``BUSY``), ``reject`` (``NO CARRIER``), ``network_no_answer`` (``NO ANSWER`` after the
network's own ring time), or ``ring`` (rings until the gateway hangs up). ``AT+CHUP`` /
``ATH`` end the call (``VOICE CALL: END: <seconds>`` for an answered one). Every call is
kept, with who ended it, for tests and the console's police timeline. Not thread-safe on
its own: the modem simulator calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

BEHAVIOURS = ("answer", "busy", "reject", "network_no_answer", "ring")
DIALLING_S = 0.1  # dialling (2) before the phone rings (3)
NETWORK_RING_S = 60.0  # how long the network lets a phone ring before NO ANSWER


@dataclass
class SimCall:
    """One call as the simulated network saw it; times are the simulator clock's."""

    number: str
    behaviour: str
    after_s: float
    started: float
    wall: float
    stat: int = 2
    outcome: str = ""  # the behaviour that played out, or "" while up
    ended: float | None = None
    hung_up_by: str = ""  # "gateway", "network" (busy, rejected, no answer), "officer"
    answered_at: float | None = None
    urcs: list[str] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.ended is None


class VoiceLine:
    """The calls of one simulated modem."""

    def __init__(self, clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self._clock = clock
        self._wall = wall
        self.behaviour = "ring"
        self.after_s = 2.0
        self.calls: list[SimCall] = []

    def behave(self, behaviour: str, after_s: float = 2.0) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"call behaviour must be one of {', '.join(BEHAVIOURS)}")
        self.behaviour, self.after_s = behaviour, after_s

    def dial(self, number: str) -> SimCall:
        call = SimCall(number, self.behaviour, self.after_s, self._clock(), self._wall())
        self.calls.append(call)
        return call

    def active(self) -> list[SimCall]:
        return [c for c in self.calls if c.up]

    def clcc(self) -> list[str]:
        """``+CLCC`` lines for the calls still up (all outgoing voice calls)."""
        self.tick()
        return [f'+CLCC: {i},0,{c.stat},0,0,"{c.number}",145'
                for i, c in enumerate(self.active(), 1)]

    def hang_up(self) -> list[str]:
        """``AT+CHUP``: every call ends; the URCs a SIM7600 prints after its ``OK``."""
        self.tick()
        out = []
        for call in self.active():
            lines = [f"VOICE CALL: END: {self._talked(call):06d}"] if call.stat == 0 else []
            self._end(call, "gateway", call.outcome or ("answer" if call.stat == 0 else "ring"))
            out += lines
        return out

    def next_due_in(self) -> float | None:
        """Seconds until some call changes by itself, or None."""
        now = self._clock()
        dues = [self._due(c) - now for c in self.active() if self._due(c) != float("inf")]
        return max(0.0, min(dues)) if dues else None

    def tick(self) -> list[str]:
        """Advance every call to now; the URCs that changes print."""
        now = self._clock()
        out: list[str] = []
        for call in self.active():
            if call.stat == 2 and now >= call.started + DIALLING_S:
                call.stat = 3
            if call.stat != 3 or now < self._due(call):
                continue
            if call.behaviour == "answer":
                call.stat, call.answered_at, call.outcome = 0, now, "answer"
                out.append("VOICE CALL: BEGIN")
            elif call.behaviour == "busy":
                out.append("BUSY")
                self._end(call, "network", "busy")
            elif call.behaviour == "reject":
                out.append("NO CARRIER")
                self._end(call, "officer", "reject")
            else:  # rang as long as the network lets it
                out.append("NO ANSWER")
                self._end(call, "network", "network_no_answer")
        return out

    def _due(self, call: SimCall) -> float:
        if call.stat == 0:
            return float("inf")
        if call.behaviour == "ring":
            return call.started + NETWORK_RING_S
        if call.behaviour == "network_no_answer":
            return call.started + min(call.after_s, NETWORK_RING_S)
        return call.started + max(call.after_s, DIALLING_S)

    def _talked(self, call: SimCall) -> int:
        return int(self._clock() - (call.answered_at or self._clock()))

    def _end(self, call: SimCall, by: str, outcome: str) -> None:
        call.ended, call.hung_up_by, call.outcome = self._clock(), by, outcome
        call.stat = 6
