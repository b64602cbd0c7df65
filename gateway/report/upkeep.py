"""The gateway itself over the month: restarts, trouble periods (broker, hotline, modem,
serial bus, disk), and the periodic tests it journaled against those it owed.

Trouble comes from two writers: the escalation channels (``detail.source``: ``hotline``,
``modem``) and the health limits (``detail.what``: ``disk``, ``backlog`` of a consumer,
``hotline``). A journal backlog of the ``mqtt`` consumer means the broker was not taking
events: that is a broker outage. Periods of one category that overlap are merged.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.report.devices import Period, periods
from gateway.report.source import TimelineRow


class Trouble(StrEnum):
    """The kinds of trouble the report groups periods by."""

    BROKER = "broker"
    HOTLINE = "hotline"
    MODEM = "modem"
    SERIAL = "serial"
    DISK = "disk"
    BACKLOG = "backlog"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Upkeep:
    """The month's restarts, trouble periods and periodic tests."""

    restarts: tuple[float, ...]  # unix s of each gateway start
    trouble: dict[Trouble, tuple[Period, ...]]
    tests: int  # periodic test reports journaled
    tests_due: int | None  # how many the schedule owed (None: periodic tests off)
    longest_test_gap_s: float | None

    def outages(self, kind: Trouble) -> tuple[Period, ...]:
        return self.trouble.get(kind, ())


def category(detail: dict[str, Any]) -> tuple[Trouble, str]:
    """The category of a trouble event and the key its clearing event shares."""
    source, what = detail.get("source"), detail.get("what")
    if what == "backlog":
        consumer = str(detail.get("consumer", ""))
        kind = Trouble.BROKER if consumer == "mqtt" else Trouble.BACKLOG
        return kind, f"backlog:{consumer}"
    name = str(source or what or "")
    for kind in (Trouble.BROKER, Trouble.HOTLINE, Trouble.MODEM, Trouble.DISK):
        if name == kind.value:
            return kind, f"{'source' if source else 'what'}:{name}"
    if name.startswith("serial"):
        return Trouble.SERIAL, f"source:{name}"
    return Trouble.OTHER, f"other:{name}"


def summarise(rows: Sequence[TimelineRow], start: float, end: float,
              periodic_test_h: float) -> Upkeep:
    """Restarts, trouble periods and test coverage between ``start`` and ``end``."""
    restarts = tuple(r.ts for r in rows if r.type == "gateway_start")
    keyed: dict[tuple[Trouble, str], list[TimelineRow]] = {}
    for r in rows:
        if r.type in ("trouble", "trouble_cleared"):
            keyed.setdefault(category(_detail(r)), []).append(r)
    trouble: dict[Trouble, list[Period]] = {}
    for (kind, key), mine in keyed.items():
        trouble.setdefault(kind, []).extend(
            periods(mine, "trouble", "trouble_cleared", start, end, key))
    tests = [r.ts for r in rows if r.type == "test_report" and _detail(r).get("periodic")]
    due = int((end - start) // (periodic_test_h * 3600)) if periodic_test_h > 0 else None
    bounds = [start, *tests, end]
    gap = max(b - a for a, b in itertools.pairwise(bounds)) if due else None
    return Upkeep(restarts, {k: merge(v) for k, v in trouble.items()}, len(tests), due, gap)


def merge(spans: list[Period]) -> tuple[Period, ...]:
    """Overlapping periods of one category as one."""
    out: list[Period] = []
    for p in sorted(spans, key=lambda p: p.start):
        if out and p.start <= out[-1].end:
            last = out[-1]
            out[-1] = Period(last.start, max(last.end, p.end), last.ongoing or p.ongoing,
                             last.what)
        else:
            out.append(p)
    return tuple(out)


def _detail(row: TimelineRow) -> dict[str, Any]:
    try:
        value = json.loads(row.detail) if row.detail else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
