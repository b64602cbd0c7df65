"""Response-time figures: median, 90th percentile and worst, with the worst cases named.

Percentiles use the nearest-rank method (the value at rank ceil(p·n) of the sorted list),
so every figure printed is a time some alarm really took, which a meeting can look up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gateway.report.incidents import Incident

WORST_LISTED = 3  # worst cases listed per interval


class Step(StrEnum):
    """The four intervals measured from the moment an alarm was raised."""

    TAKEN = "taken"  # the security desk took it (first ack)
    DELIVERED = "delivered"  # first delivery to the police (HTTP 2xx or SMS sent)
    POLICE_ACK = "police_ack"  # the police acknowledged it
    RESOLVED = "resolved"


STEP_TIME: dict[Step, Callable[[Incident], float | None]] = {
    Step.TAKEN: lambda i: i.taken,
    Step.DELIVERED: lambda i: i.delivered,
    Step.POLICE_ACK: lambda i: i.police_ack,
    Step.RESOLVED: lambda i: i.resolved,
}


@dataclass(frozen=True, slots=True)
class Interval:
    """One step's figures over the alarms that reached it; seconds, None without data."""

    step: Step
    count: int
    median_s: float | None
    p90_s: float | None
    worst_s: float | None
    worst: tuple[tuple[Incident, float], ...]
    values_s: tuple[float, ...]


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of an ascending list; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def interval(step: Step, incidents: Sequence[Incident]) -> Interval:
    """How long ``step`` took across ``incidents``: count, p50, p90, worst."""
    timed = [(i, i.after(STEP_TIME[step](i))) for i in incidents]
    pairs = [(i, s) for i, s in timed if s is not None]
    values = sorted(s for _, s in pairs)
    worst = sorted(pairs, key=lambda p: (-p[1], p[0].raised))[:WORST_LISTED]
    return Interval(step, len(values), percentile(values, 50), percentile(values, 90),
                    values[-1] if values else None, tuple(worst), tuple(values))


def intervals(incidents: Sequence[Incident]) -> tuple[Interval, ...]:
    """Every step's :func:`interval`."""
    return tuple(interval(step, incidents) for step in Step)
