"""Each alarm of the month, rebuilt from its events: when it was raised, taken by the desk,
first delivered to the police, acknowledged by them, and resolved.

Only alarms *raised* in the month belong to its report; their later steps are read up to
:data:`GRACE_S` after the month's end, so an alarm raised at 23:59 on the 30th still shows
its resolution. The fold reads the journal's own events (``alarm_state`` with its
``action``, the raising inputs, the escalation plans), never the retained documents,
which only hold the latest state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from gateway.report.source import LifecycleRow

GRACE_S = 7 * 86400  # seconds after the month during which its alarms' later steps count


class AlarmKind(StrEnum):
    """How the report groups alarm types: a contact is a door or sensor opening."""

    PANIC = "panic"
    DURESS = "duress"
    CONTACT = "contact"


@dataclass(frozen=True, slots=True)
class Incident:
    """One alarm. Times are unix seconds, None when the step never happened."""

    id: str
    device: str
    ward: str
    room: str
    kind: AlarmKind
    drill: bool
    raised: float
    code: str = ""
    mass: bool = False
    presses: int = 1
    sent_to_police: bool = False
    taken: float | None = None
    taken_by: str | None = None
    delivered: float | None = None
    police_ack: float | None = None
    police_by: str | None = None
    resolved: float | None = None
    resolved_by: str | None = None
    note: str = ""

    def after(self, step: float | None) -> float | None:
        """Seconds from raised to ``step``, or None."""
        return None if step is None else max(0.0, step - self.raised)


@dataclass
class _Open:
    """An incident being folded (mutable while the rows stream by); steps keep their
    first occurrence: ``(ts, by)``, or ``(ts, by, note)`` for the resolution."""

    base: Incident
    kind: AlarmKind
    presses: int = 1
    sent: bool = False
    mass: bool = False
    taken: tuple[float, str | None] | None = None
    delivered: float | None = None
    police: tuple[float, str | None] | None = None
    resolved: tuple[float, str | None, str] | None = None

    def finish(self, *, mass: bool) -> Incident:
        taken, police = self.taken or (None, None), self.police or (None, None)
        resolved = self.resolved or (None, None, "")
        return replace(
            self.base, kind=self.kind, mass=mass or self.mass, presses=max(1, self.presses),
            sent_to_police=self.sent or self.delivered is not None,
            taken=taken[0], taken_by=taken[1], delivered=self.delivered,
            police_ack=police[0], police_by=police[1],
            resolved=resolved[0], resolved_by=resolved[1], note=resolved[2],
        )


def fold(rows: Iterable[LifecycleRow], start: float, end: float) -> list[Incident]:
    """The incidents raised in ``[start, end)``, from lifecycle rows in journal order."""
    open_: dict[str, _Open] = {}
    mass_ids: set[str] = set()
    raising: dict[str, str] = {}  # alarm id -> the input committed just before its raise
    for row in rows:
        if row.type == "alarm_state":
            _state(open_, row, start, end, raising.pop(row.alarm_id, ""))
            if row.plan_mass and row.plan_alarms:
                mass_ids.update(_ids(row.plan_alarms))
            if row.plan_key is not None or row.mass_group is not None:
                _mark(open_, row)
        elif row.type in ("press", "hold", "open"):
            if row.alarm_id in open_:
                _input(open_[row.alarm_id], row)
            else:
                raising[row.alarm_id] = row.type
    out = [o.finish(mass=o.base.id in mass_ids) for o in open_.values()]
    return sorted(out, key=lambda i: i.raised)


def _ids(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _mark(open_: dict[str, _Open], row: LifecycleRow) -> None:
    """An escalation was decided for the row's alarm (or every member of its plan)."""
    members = _ids(row.plan_alarms) if row.plan_alarms else []
    for alarm_id in members or [row.alarm_id]:
        if alarm_id in open_:
            open_[alarm_id].sent = True
    if row.mass_group is not None and row.alarm_id in open_:
        open_[row.alarm_id].mass = True


def _state(open_: dict[str, _Open], row: LifecycleRow, start: float, end: float,
           raised_by: str) -> None:
    found = open_.get(row.alarm_id)
    if found is None:
        if row.state == "raised" and row.action is None and start <= row.ts < end:
            kind = _kind(row.kind, raised_by)
            base = Incident(row.alarm_id, row.device or "", row.ward or "", row.room or "",
                            kind, row.drill, row.ts)
            open_[row.alarm_id] = _Open(base, kind)
        return
    if row.action == "ack":
        found.taken = found.taken or (row.ts, row.by)
    elif row.action == "resolve":
        found.resolved = found.resolved or (row.ts, row.by, row.note or "")
    elif row.action is None and row.state == "escalated":
        found.delivered = found.delivered or row.ts
    elif row.action is None and row.state == "police_acknowledged":
        found.police = found.police or (row.ts, row.by)


def _kind(device_kind: str | None, raised_by: str) -> AlarmKind:
    if raised_by == "open":
        return AlarmKind.CONTACT
    if raised_by == "hold" or device_kind == "duress_button":
        return AlarmKind.DURESS
    return AlarmKind.PANIC


def _input(found: _Open, row: LifecycleRow) -> None:
    """A later press, hold or opening of an open incident: a hold makes it duress, the
    others add to its press count (as the engine's ``press_count``)."""
    if row.type == "hold":
        found.kind = AlarmKind.DURESS
    else:
        found.presses += 1


def with_codes(incidents: list[Incident], codes: dict[str, str]) -> list[Incident]:
    """``incidents`` with each alarm's 4-digit code filled in."""
    return [replace(i, code=codes.get(i.id, "")) for i in incidents]
