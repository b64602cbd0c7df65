"""Read-only access to the gateway's journal for the report, with SQL doing the counting.

The journal is opened by :func:`gateway.journal.reader.connect_readonly` (``mode=ro``),
so the report can run beside a live gateway (WAL readers never block the writer) and can
never change a byte of it. Every
query is bounded by the ``events(ts)`` index to the month (plus a grace period for the
later steps of alarms raised near its end) and either aggregates in SQL or streams rows
with a cursor: a year-long journal is never loaded whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import JournalError
from gateway.journal.reader import connect_readonly

LIFECYCLE_TYPES = ("alarm_state", "press", "hold", "open", "police_reply")
DEVICE_TYPES = ("press", "hold", "release", "open", "close", "tamper", "tamper_ok", "boot",
                "low_battery", "supervision_lost", "supervision_restored")
HEALTH_TYPES = ("supervision_lost", "supervision_restored", "tamper", "tamper_ok", "low_battery")
OPS_TYPES = ("gateway_start", "trouble", "trouble_cleared", "test_report")
#: rows whose body is not JSON (a damaged disk, a hand edit) are left out of every figure and
#: counted (:meth:`JournalSource.malformed`), so one bad row never stops the report
VALID = "json_valid(body)"


@dataclass(frozen=True, slots=True)
class LifecycleRow:
    """One event of an alarm's life, with the detail fields the report reads."""

    ts: float
    type: str
    alarm_id: str
    device: str | None
    ward: str | None
    room: str | None
    kind: str | None
    drill: bool
    state: str | None
    action: str | None
    by: str | None
    note: str | None
    plan_key: str | None
    plan_mass: bool
    plan_alarms: str | None  # JSON list of alarm ids of a plan
    mass_group: str | None  # the mass alarm a late alarm joined


@dataclass(frozen=True, slots=True)
class AttemptGroup:
    """``escalation_attempt`` events counted by channel, target, status and retry flag."""

    channel: str
    target: str
    status: str
    will_retry: bool
    drill: bool
    outcome: str | None
    count: int
    parts: int | None


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """A device or gateway event in order: ``detail`` is the raw JSON text or None."""

    ts: float
    type: str
    device: str | None
    value: int
    detail: str | None


class JournalSource:
    """The journal file, opened read-only. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> JournalSource:
        self._conn = connect_readonly(self.path, timeout_s=10.0)
        try:
            self._conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            self._conn.close()
            self._conn = None
            raise JournalError(f"journal {self.path}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _rows(self, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        assert self._conn is not None, "use JournalSource as a context manager"
        try:
            yield from self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc

    # -- the queries ----------------------------------------------------------------------
    def coverage(self) -> tuple[float | None, float | None]:
        """Oldest and newest event times (unix s) the journal still holds (pruning)."""
        row = next(self._rows("SELECT MIN(ts), MAX(ts) FROM events", ()))
        return row[0], row[1]

    def malformed(self, start: float, end: float) -> int:
        """Rows of the period whose body is not JSON (left out of every figure)."""
        sql = "SELECT COUNT(*) FROM events WHERE ts >= ? AND ts < ? AND NOT json_valid(body)"
        return int(next(self._rows(sql, (start, end)))[0])

    def count_by_type(self, start: float, end: float) -> dict[str, int]:
        sql = "SELECT type, COUNT(*) FROM events WHERE ts >= ? AND ts < ? GROUP BY type"
        return {t: n for t, n in self._rows(sql, (start, end))}

    def device_counts(self, start: float, end: float) -> Iterator[tuple[str, str, bool, int]]:
        """``(device, type, drill, count)`` of device inputs in the period."""
        marks = ",".join("?" * len(DEVICE_TYPES))
        sql = (f"SELECT device, type, COALESCE(json_extract(body, '$.drill'), 0), COUNT(*) "
               f"FROM events WHERE ts >= ? AND ts < ? AND device IS NOT NULL AND {VALID} "
               f"AND type IN ({marks}) GROUP BY 1, 2, 3")
        for device, type_, drill, count in self._rows(sql, (start, end, *DEVICE_TYPES)):
            yield device, type_, bool(drill), count

    def lifecycle(self, start: float, end: float) -> Iterator[LifecycleRow]:
        """Every event of an alarm's life in ``[start, end)``, in journal order."""
        marks = ",".join("?" * len(LIFECYCLE_TYPES))
        sql = (
            "SELECT ts, type, alarm_id, device, json_extract(body, '$.ward'), "
            "json_extract(body, '$.room'), json_extract(body, '$.kind'), "
            "COALESCE(json_extract(body, '$.drill'), 0), json_extract(body, '$.detail.state'), "
            "json_extract(body, '$.detail.action'), json_extract(body, '$.detail.by'), "
            "json_extract(body, '$.detail.note'), json_extract(body, '$.detail.escalation.key'), "
            "COALESCE(json_extract(body, '$.detail.escalation.mass'), 0), "
            "json_extract(body, '$.detail.escalation.alarms'), "
            "json_extract(body, '$.detail.mass_group') "
            f"FROM events WHERE ts >= ? AND ts < ? AND type IN ({marks}) "
            f"AND alarm_id IS NOT NULL AND {VALID} ORDER BY seq"
        )
        for r in self._rows(sql, (start, end, *LIFECYCLE_TYPES)):
            yield LifecycleRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8],
                               r[9], r[10], r[11], r[12], bool(r[13]), r[14], r[15])

    def alarm_codes(self, alarm_ids: list[str]) -> dict[str, str]:
        """The 4-digit codes of these alarms, from their retained ``alarm/<id>`` documents
        (events do not carry the code; people in a meeting name alarms by it)."""
        out: dict[str, str] = {}
        for i in range(0, len(alarm_ids), 500):
            chunk = [f"alarm/{a}" for a in alarm_ids[i:i + 500]]
            sql = (f"SELECT topic, json_extract(payload, '$.code') FROM retained "
                   f"WHERE topic IN ({','.join('?' * len(chunk))}) AND json_valid(payload)")
            for topic, code in self._rows(sql, tuple(chunk)):
                if code is not None:
                    out[topic.removeprefix("alarm/")] = str(code)
        return out

    def attempts(self, start: float, end: float) -> Iterator[AttemptGroup]:
        """``escalation_attempt`` events grouped; ``parts`` sums the SMS parts reported."""
        d = "json_extract(body, '$.detail.{}')"
        sql = (
            f"SELECT {d.format('channel')}, {d.format('target')}, {d.format('status')}, "
            f"COALESCE({d.format('will_retry')}, 0), COALESCE(json_extract(body, '$.drill'), 0), "
            f"{d.format('outcome')}, COUNT(*), SUM({d.format('parts')}) "
            f"FROM events WHERE ts >= ? AND ts < ? AND type = 'escalation_attempt' AND {VALID} "
            "GROUP BY 1, 2, 3, 4, 5, 6"
        )
        for r in self._rows(sql, (start, end)):
            yield AttemptGroup(str(r[0]), str(r[1]), str(r[2]), bool(r[3]), bool(r[4]),
                               r[5], r[6], None if r[7] is None else int(r[7]))

    def timeline(self, start: float, end: float, types: tuple[str, ...]) -> Iterator[TimelineRow]:
        """Events of ``types`` in order, with their detail as JSON text."""
        marks = ",".join("?" * len(types))
        sql = (f"SELECT ts, type, device, COALESCE(json_extract(body, '$.value'), 0), "
               f"json_extract(body, '$.detail') FROM events WHERE ts >= ? AND ts < ? "
               f"AND type IN ({marks}) AND {VALID} ORDER BY seq")
        for r in self._rows(sql, (start, end, *types)):
            yield TimelineRow(r[0], r[1], r[2], int(r[3]), r[4])
