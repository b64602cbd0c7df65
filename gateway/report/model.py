"""The month's report as typed data: :func:`build_report` reads the journal (read-only)
and returns a :class:`MonthReport`, which the renderer turns into HTML and PDF.

Drills are kept apart from real alarms everywhere: they count towards the drill target and
the drill calendar, never towards the alarm counts or the response times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.schema import SiteConfig
from gateway.report import channels as ch
from gateway.report import devices as dv
from gateway.report import incidents as inc
from gateway.report import upkeep as up
from gateway.report.period import Month
from gateway.report.source import HEALTH_TYPES, OPS_TYPES, JournalSource
from gateway.report.stats import Interval, intervals

REJECTED_TYPES = ("rejected_frame", "rejected_replay", "rejected_command")


@dataclass(frozen=True, slots=True)
class TypeCounts:
    """Alarms of one ward or device by type; ``mass`` counts those that were part of a
    mass alarm (they are in the type columns too)."""

    panic: int = 0
    duress: int = 0
    contact: int = 0
    mass: int = 0
    drills: int = 0

    @property
    def total(self) -> int:
        return self.panic + self.duress + self.contact


@dataclass(frozen=True, slots=True)
class MonthReport:
    """Everything the monthly report shows, computed from the journal (no I/O)."""

    site_id: str
    site_name: str
    site_address: str
    month: Month
    generated_at: float
    coverage: tuple[float | None, float | None]
    events: int
    incidents: tuple[inc.Incident, ...]
    by_ward: dict[str, TypeCounts]
    by_device: dict[str, TypeCounts]
    ward_names: dict[str, str]
    intervals: tuple[Interval, ...]
    channels: ch.Channels
    devices: tuple[dv.DeviceRow, ...]
    drills: tuple[dv.WardDrills, ...]
    upkeep: up.Upkeep
    rejected: dict[str, int] = field(default_factory=dict)
    sms_part_price: float = 0.0
    currency: str = "VND"
    malformed: int = 0  # journal rows of the month that are not JSON, left out

    @property
    def alarms(self) -> tuple[inc.Incident, ...]:
        """Real alarms (drills left out)."""
        return tuple(i for i in self.incidents if not i.drill)

    @property
    def drill_alarms(self) -> tuple[inc.Incident, ...]:
        return tuple(i for i in self.incidents if i.drill)

    @property
    def totals(self) -> TypeCounts:
        return count_types(self.incidents)

    @property
    def never_police_acked(self) -> tuple[inc.Incident, ...]:
        """Real alarms sent to the police that the police never acknowledged."""
        return tuple(i for i in self.alarms if i.sent_to_police and i.police_ack is None)

    @property
    def without_note(self) -> tuple[inc.Incident, ...]:
        """Real alarms resolved with no note on what happened."""
        return tuple(i for i in self.alarms if i.resolved is not None and not i.note.strip())

    @property
    def unresolved(self) -> tuple[inc.Incident, ...]:
        return tuple(i for i in self.alarms if i.resolved is None)

    @property
    def covers_month(self) -> bool:
        """False when pruning (``retention_days``) removed part of the month."""
        first = self.coverage[0]
        return first is None or first <= self.month.start + 60

    def ward_name(self, ward: str) -> str:
        return self.ward_names.get(ward, ward or "?")


def count_types(incidents: Iterable[inc.Incident]) -> TypeCounts:
    """Real alarms by kind, and drills apart."""
    n = {"panic": 0, "duress": 0, "contact": 0, "mass": 0, "drills": 0}
    for i in incidents:
        if i.drill:
            n["drills"] += 1
            continue
        n[i.kind.value] += 1
        n["mass"] += 1 if i.mass else 0
    return TypeCounts(**n)


def _grouped(incidents: Sequence[inc.Incident], key: str) -> dict[str, TypeCounts]:
    keys = sorted({getattr(i, key) for i in incidents})
    return {k: count_types(i for i in incidents if getattr(i, key) == k) for k in keys}


def build_report(config: SiteConfig, journal: Path, month: Month, now: float) -> MonthReport:
    """Read the month from the journal at ``journal`` (read-only) and sum it up."""
    start, end = month.start, month.end
    with JournalSource(journal) as src:
        found = inc.fold(src.lifecycle(start, end + inc.GRACE_S), start, end)
        incidents = inc.with_codes(found, src.alarm_codes([i.id for i in found]))
        by_type = src.count_by_type(start, end)
        health = list(src.timeline(start, end, HEALTH_TYPES))
        devices = dv.device_rows(config, src.device_counts(start, end), health, incidents,
                                 start, end)
        channels = ch.summarise(src.attempts(start, end))
        upkeep = up.summarise(list(src.timeline(start, end, OPS_TYPES)), start, end,
                              config.health.periodic_test_h)
        coverage = src.coverage()
        malformed = src.malformed(start, end)
    real = [i for i in incidents if not i.drill]
    wards = {w.id: w.name for w in config.wards}
    return MonthReport(
        config.site.id, config.site.name, config.site.address, month, now, coverage,
        sum(by_type.values()), tuple(incidents),
        {**{w: TypeCounts() for w in wards}, **_grouped(incidents, "ward")},
        _grouped(incidents, "device"), wards, intervals(real), channels, devices,
        dv.ward_drills(config, incidents, month.day_of), upkeep,
        {t: by_type.get(t, 0) for t in REJECTED_TYPES}, config.report.sms_part_price,
        config.report.currency, malformed,
    )
