"""The receiver's typed records: an incoming alarm from any source, the alarm as the police
handle it, officer steps, and a site's link. Sans-I/O; JSON only at the store and the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gateway.escalation.wire import AckState, EscalationRequest

TEST_TYPE = "test"  # a periodic test report: a sign of life, never an alarm on the screen


class AlarmSource(StrEnum):
    """Where an alarm came in: the HTTP hotline (SPEC §4) or a DC-09 panel (SPEC §7)."""

    HTTP = "http"
    DC09 = "dc09"


class PoliceState(StrEnum):
    """An alarm at the police desk: new (ringing) → taken → on scene → closed."""

    NEW = "new"
    TAKEN = "police_acknowledged"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


TRANSITIONS: dict[PoliceState, frozenset[PoliceState]] = {
    PoliceState.NEW: frozenset({PoliceState.TAKEN}),
    PoliceState.TAKEN: frozenset({PoliceState.ON_SCENE, PoliceState.CLOSED}),
    PoliceState.ON_SCENE: frozenset({PoliceState.CLOSED}),
    PoliceState.CLOSED: frozenset(),
}

ACK_OF = {PoliceState.TAKEN: AckState.POLICE_ACKNOWLEDGED,
          PoliceState.ON_SCENE: AckState.ON_SCENE, PoliceState.CLOSED: AckState.CLOSED}


class LinkState(StrEnum):
    """A site's path: not heard since this receiver started, alive, or silent too long."""

    UNKNOWN = "unknown"
    OK = "ok"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class IncomingAlarm:
    """One alarm as a source delivers it, before it is stored.

    ``key`` makes a redelivery recognisable (HTTP: the ``Idempotency-Key``); it is unique per
    site and source. Times are RFC 3339 strings as the sender gave them. ``raw`` is the body
    as received, kept in the journal for the record.
    """

    site: str
    source: AlarmSource
    key: str
    alarm_id: str
    code: str
    type: str
    drill: bool
    ward_id: str
    ward_name: str
    room: str | None
    device: str | None
    raised_at: str
    escalated_at: str
    press_count: int = 1
    acknowledged_locally: bool = False
    message: str = ""
    message_en: str = ""
    raw: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.site or not self.key or not self.alarm_id:
            raise ValueError("site, key and alarm_id must not be empty")

    @property
    def is_test(self) -> bool:
        return self.type == TEST_TYPE

    @classmethod
    def from_request(cls, request: EscalationRequest) -> IncomingAlarm:
        """An HTTP hotline request (already verified) as an incoming alarm."""
        return cls(
            site=request.site.id, source=AlarmSource.HTTP, key=request.escalation_id,
            alarm_id=request.alarm_id, code=request.code, type=request.type,
            drill=request.drill, ward_id=request.ward.id, ward_name=request.ward.name,
            room=request.room, device=request.device, raised_at=request.raised_at,
            escalated_at=request.escalated_at, press_count=request.press_count,
            acknowledged_locally=request.acknowledged_locally, message=request.message,
            message_en=request.message_en, raw=request.to_dict(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "source": str(self.source), "key": self.key,
                "alarm_id": self.alarm_id, "code": self.code, "type": self.type,
                "drill": self.drill, "ward": {"id": self.ward_id, "name": self.ward_name},
                "room": self.room, "device": self.device, "raised_at": self.raised_at,
                "escalated_at": self.escalated_at, "press_count": self.press_count,
                "acknowledged_locally": self.acknowledged_locally, "message": self.message,
                "message_en": self.message_en}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IncomingAlarm:
        ward = d.get("ward") or {}
        return cls(d["site"], AlarmSource(d["source"]), d["key"], d["alarm_id"], d["code"],
                   d["type"], bool(d["drill"]), ward.get("id", ""), ward.get("name", ""),
                   d.get("room"), d.get("device"), d["raised_at"], d["escalated_at"],
                   int(d.get("press_count", 1)), bool(d.get("acknowledged_locally")),
                   d.get("message", ""), d.get("message_en", ""))


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an alarm's police history; ``ts`` RFC 3339 UTC."""

    ts: str
    state: PoliceState
    by: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "state": str(self.state), "by": self.by, "note": self.note}


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """An alarm at the police desk: the latest delivery of it and what officers did.

    ``ref`` is the receiver's own number for it (answered as ``ref``); ``deliveries`` counts
    the distinct escalations (rounds) of the same hospital alarm.
    """

    ref: int
    alarm: IncomingAlarm
    received_at: str
    state: PoliceState
    history: tuple[Step, ...]
    deliveries: int = 1

    @property
    def open(self) -> bool:
        return self.state != PoliceState.CLOSED

    def step(self, state: PoliceState, ts: str, by: str, note: str = "") -> AlarmRecord:
        return replace(self, state=state, history=(*self.history, Step(ts, state, by, note)))

    def redelivered(self, alarm: IncomingAlarm, ts: str) -> AlarmRecord:
        """A further escalation of the same hospital alarm: newest facts; a closed alarm
        rings again (the hospital is calling once more)."""
        reopened = self.state == PoliceState.CLOSED
        record = replace(self, alarm=alarm, deliveries=self.deliveries + 1)
        return record.step(PoliceState.NEW, ts, f"site:{alarm.site}") if reopened else record

    def last(self, state: PoliceState) -> Step | None:
        return next((s for s in reversed(self.history) if s.state == state), None)

    def document(self, site_name: str) -> dict[str, Any]:
        """What the wall screen shows (and the store keeps)."""
        taken, scene, closed = (self.last(s) for s in (
            PoliceState.TAKEN, PoliceState.ON_SCENE, PoliceState.CLOSED))
        return {
            "ref": self.ref, "site_name": site_name, **self.alarm.to_dict(),
            "received_at": self.received_at, "state": str(self.state),
            "deliveries": self.deliveries,
            "taken_by": taken.by if taken else None, "taken_at": taken.ts if taken else None,
            "on_scene_at": scene.ts if scene else None,
            "closed_at": closed.ts if closed else None,
            "history": [s.to_dict() for s in self.history],
        }

    @classmethod
    def from_document(cls, d: dict[str, Any]) -> AlarmRecord:
        steps = tuple(Step(s["ts"], PoliceState(s["state"]), s["by"], s.get("note", ""))
                      for s in d.get("history", []))
        return cls(int(d["ref"]), IncomingAlarm.from_dict(d), d["received_at"],
                   PoliceState(d["state"]), steps, int(d.get("deliveries", 1)))


@dataclass(frozen=True, slots=True)
class Accepted:
    """What :meth:`receiver.intake.Intake.accept` gives back: the receiver's reference and
    whether this was a redelivery of something already stored."""

    ref: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused at the door: HTTP status, one-line reason, who and what it claimed."""

    status: int
    reason: str
    remote: str
    site: str | None = None
    path: str = ""
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "remote": self.remote,
                "site": self.site, "path": self.path, "key": self.key}
