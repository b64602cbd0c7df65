"""Debounce and hold for one contact, as clock-driven logic with no GPIO library in it.

Leading-edge debounce: the first edge after a quiet period is reported at once (a press must
not wait for the contact to settle: it sits on the press-to-police path), then edges are
ignored for ``bounce_s``; when that lock-out ends, the level is sampled again and a change
that outlived the bounce is reported. A press held for ``hold_s`` reports ``hold`` once
(duress). gpiozero's MockFactory does not simulate bounce, so this is where bounce is handled
and where the tests feed bounce sequences.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Transition:
    """``kind`` is ``press``, ``release`` or ``hold``; ``at`` is monotonic seconds;
    ``held_s`` is whole seconds held (for ``hold``)."""

    kind: str
    at: float
    held_s: int = 0


class Debouncer:
    """One input's edges in, press/release/hold out: the first edge is reported at once
    (leading-edge debounce adds no latency), bounces within ``bounce_s`` are ignored."""

    def __init__(self, bounce_s: float, hold_s: float, *, pressed: bool = False) -> None:
        self.bounce_s = bounce_s
        self.hold_s = hold_s
        self._raw = pressed
        self._reported = pressed
        self._lockout_until = float("-inf")
        self._pressed_at: float | None = None
        self._hold_fired = False

    @property
    def pressed(self) -> bool:
        """The debounced level."""
        return self._reported

    def edge(self, *, pressed: bool, now: float) -> list[Transition]:
        """The raw input changed to ``pressed`` at ``now``."""
        self._raw = pressed
        if now < self._lockout_until:
            return []
        return self._report(now)

    def tick(self, now: float) -> list[Transition]:
        """Time passed; call at :meth:`next_deadline` (or any time)."""
        out: list[Transition] = []
        if now >= self._lockout_until and self._raw != self._reported:
            out.extend(self._report(now))
        if (
            self._reported
            and not self._hold_fired
            and self._pressed_at is not None
            and now >= self._pressed_at + self.hold_s
        ):
            self._hold_fired = True
            out.append(Transition("hold", now, int(now - self._pressed_at)))
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to decide next, or None."""
        deadlines = []
        if self._raw != self._reported:
            deadlines.append(self._lockout_until)
        if self._reported and not self._hold_fired and self._pressed_at is not None:
            deadlines.append(self._pressed_at + self.hold_s)
        return min(deadlines) if deadlines else None

    def _report(self, now: float) -> list[Transition]:
        if self._raw == self._reported:
            return []
        self._reported = self._raw
        self._lockout_until = now + self.bounce_s
        if self._reported:
            self._pressed_at = now
            self._hold_fired = False
            return [Transition("press", now)]
        self._pressed_at = None
        return [Transition("release", now)]
