"""The escalation channels over the month: what each channel and target was asked to do
and what came of it, counted from ``escalation_attempt`` events (drills included: they
use the same channels).

Counting follows the alarm engine's own rules (``fold_attempt``): ``activated``,
``superseded`` and ``rate_limited`` are bookkeeping, not attempts. SMS parts come from
the attempt's ``parts`` where the gateway journals it; voice calls are attempts on the
``call`` channel whose ``status`` (or ``outcome``) says ``answered``, ``busy``, …
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.report.source import AttemptGroup

NOT_ATTEMPTS = frozenset({"activated", "superseded", "rate_limited"})
CALL_CHANNELS = frozenset({"call", "voice"})


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One channel and target. ``retried``: attempts that failed and were retried;
    ``failed``: given up for good (refused, or no channel); ``parts`` None when the
    journal does not say."""

    channel: str
    target: str
    attempts: int
    delivered: int
    retried: int
    failed: int
    drills: int
    parts: int | None


@dataclass(frozen=True, slots=True)
class CallRow:
    """Voice calls to one number: made, and how each ended (``answered``, ``busy``, …)."""

    target: str
    made: int
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.outcomes.get("answered", 0)


@dataclass(frozen=True, slots=True)
class Channels:
    """The month's deliveries per channel and target, police calls and SMS parts."""

    rows: tuple[ChannelRow, ...]
    calls: tuple[CallRow, ...]
    sms_parts: int | None  # SMS parts sent in the month, None when not journaled
    sms_sent: int

    def cost(self, price_per_part: float) -> float | None:
        if price_per_part <= 0 or self.sms_parts is None:
            return None
        return self.sms_parts * price_per_part


@dataclass
class _Acc:
    attempts: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    drills: int = 0
    parts: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)


def summarise(groups: Iterable[AttemptGroup]) -> Channels:
    """Attempt groups folded into one row per channel and target."""
    acc: dict[tuple[str, str], _Acc] = {}
    for g in groups:
        if g.status in NOT_ATTEMPTS:
            continue
        a = acc.setdefault((g.channel, g.target), _Acc())
        a.attempts += g.count
        a.drills += g.count if g.drill else 0
        if g.channel in CALL_CHANNELS:
            outcome = g.outcome or g.status
            a.outcomes[outcome] = a.outcomes.get(outcome, 0) + g.count
        elif g.status == "delivered":
            a.delivered += g.count
            if g.parts is not None:
                a.parts = (a.parts or 0) + g.parts
        if g.will_retry:
            a.retried += g.count
        elif g.status == "failed":
            a.failed += g.count
    rows = tuple(ChannelRow(ch, t, a.attempts, a.delivered, a.retried, a.failed, a.drills,
                            a.parts) for (ch, t), a in sorted(acc.items())
                 if ch not in CALL_CHANNELS)
    calls = tuple(CallRow(t, a.attempts, dict(sorted(a.outcomes.items())))
                  for (ch, t), a in sorted(acc.items()) if ch in CALL_CHANNELS)
    sms = [r for r in rows if r.channel == "sms"]
    known = [r.parts for r in sms if r.parts is not None]
    return Channels(rows, calls, sum(known) if known else None, sum(r.delivered for r in sms))
