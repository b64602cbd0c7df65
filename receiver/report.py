"""``alarm-receiver report --month``: the police station's month across its hospitals.

Per site: alarms received (drills apart), how the duty officers answered them (received
"Đã nhận", on scene "Đã đến nơi", closed "Kết thúc", each timed from the moment the alarm
reached the receiver), alarms never taken, the site's link losses ("mất liên lạc") and the
requests refused. Read from the receiver's journal, read-only, beside the running receiver.
Layout, charts and PDF are the gateway report's (``gateway.report``, the ``report`` extra).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.core.errors import JournalError
from gateway.report.devices import Period, periods
from gateway.report.period import Month
from gateway.report.source import TimelineRow
from gateway.report.stats import percentile
from receiver.config import ReceiverConfig

GRACE_S = 7 * 86400  # the later steps of the month's alarms are read this far past its end
TYPES = ("alarm_received", "officer_action", "link_lost", "link_restored", "refused",
         "test_report", "receiver_start")
STEPS = ("police_acknowledged", "on_scene", "closed")  # as the officer's screen names them


@dataclass(frozen=True, slots=True)
class StationAlarm:
    """One hospital alarm at the station; times unix s, None when the step never came."""

    ref: int
    site: str
    code: str
    type: str
    drill: bool
    received: float
    police_acknowledged: float | None = None
    on_scene: float | None = None
    closed: float | None = None
    by: str = ""
    note: str = ""

    def after(self, step: str) -> float | None:
        ts = getattr(self, step)
        return None if ts is None else max(0.0, ts - self.received)


@dataclass(frozen=True, slots=True)
class StepFigures:
    step: str
    count: int
    median_s: float | None
    p90_s: float | None
    worst_s: float | None
    values_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SiteMonth:
    site: str
    name: str
    alarms: int
    drills: int
    by_type: dict[str, int]
    steps: tuple[StepFigures, ...]
    never_taken: tuple[StationAlarm, ...]
    link_losses: tuple[Period, ...]
    refused: int
    tests: int

    @property
    def lost_s(self) -> float:
        return sum(p.seconds for p in self.link_losses)


@dataclass(frozen=True, slots=True)
class StationReport:
    receiver_id: str
    name: str
    month: Month
    generated_at: float
    alarms: tuple[StationAlarm, ...]
    sites: tuple[SiteMonth, ...]
    steps: tuple[StepFigures, ...]  # over every site's real alarms
    restarts: tuple[float, ...] = field(default_factory=tuple)

    @property
    def real(self) -> tuple[StationAlarm, ...]:
        return tuple(a for a in self.alarms if not a.drill)


def figures(step: str, alarms: list[StationAlarm]) -> StepFigures:
    values = sorted(v for a in alarms if (v := a.after(step)) is not None)
    return StepFigures(step, len(values), percentile(values, 50), percentile(values, 90),
                       values[-1] if values else None, tuple(values))


def _rows(journal: Path, start: float, end: float) -> Iterator[tuple[float, str, str, dict[str, Any]]]:
    if not journal.exists():
        raise JournalError(f"no journal at {journal} (has the receiver run with this config?)")
    marks = ",".join("?" * len(TYPES))
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10.0)
        try:
            conn.execute("PRAGMA query_only=1")
            cur = conn.execute(f"SELECT ts, type, site, detail FROM events WHERE ts >= ? AND "
                               f"ts < ? AND type IN ({marks}) ORDER BY seq",
                               (start, end, *TYPES))
            for ts, type_, site, detail in cur:
                yield ts, type_, site or "", _json(detail)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {journal}: {exc}") from exc


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def build_station_report(config: ReceiverConfig, journal: Path, month: Month,
                         now: float) -> StationReport:
    """Read the month (alarms received in it, their steps up to :data:`GRACE_S` later)."""
    start, end = month.start, month.end
    alarms: dict[int, StationAlarm] = {}
    links: dict[str, list[TimelineRow]] = {}
    refused: dict[str, int] = {}
    tests: dict[str, int] = {}
    restarts: list[float] = []
    for ts, type_, site, d in _rows(journal, start, end + GRACE_S):
        in_month = ts < end
        if type_ == "alarm_received" and in_month and isinstance(d.get("ref"), int):
            if d["ref"] not in alarms:
                alarms[d["ref"]] = StationAlarm(d["ref"], site, str(d.get("code", "")),
                                                str(d.get("type", "")), bool(d.get("drill")), ts)
        elif type_ == "officer_action" and d.get("ref") in alarms:
            alarm, step = alarms[d["ref"]], str(d.get("state", ""))
            if step in STEPS and getattr(alarm, step) is None:
                steps: dict[str, Any] = {step: ts}
                alarms[d["ref"]] = replace(alarm, **steps, by=str(d.get("by", "")),
                                           note=str(d.get("note", "")) or alarm.note)
        elif type_ in ("link_lost", "link_restored") and in_month:
            links.setdefault(site, []).append(TimelineRow(ts, type_, site, 0, None))
        elif type_ == "refused" and in_month:
            refused[site] = refused.get(site, 0) + 1
        elif type_ == "test_report" and in_month:
            tests[site] = tests.get(site, 0) + 1
        elif type_ == "receiver_start" and in_month:
            restarts.append(ts)
    ordered = sorted(alarms.values(), key=lambda a: a.received)
    names = {s.id: s.name for s in config.sites}
    sites = []
    for site in [*names, *sorted({a.site for a in ordered} - set(names))]:
        mine = [a for a in ordered if a.site == site]
        real = [a for a in mine if not a.drill]
        by_type: dict[str, int] = {}
        for a in real:
            by_type[a.type] = by_type.get(a.type, 0) + 1
        sites.append(SiteMonth(
            site, names.get(site, site), len(real), len(mine) - len(real), by_type,
            tuple(figures(s, real) for s in STEPS),
            tuple(a for a in real if a.police_acknowledged is None),
            periods(links.get(site, []), "link_lost", "link_restored", start, end),
            refused.get(site, 0), tests.get(site, 0)))
    real_all = [a for a in ordered if not a.drill]
    return StationReport(config.receiver.id, config.receiver.name, month, now, tuple(ordered),
                         tuple(sites), tuple(figures(s, real_all) for s in STEPS),
                         tuple(restarts))
