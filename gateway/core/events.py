"""Frozen event types: what a device or the gateway reported (SPEC §3 "An event").

An :class:`EventDraft` is what an input source hands to the recorder; it becomes an
:class:`Event` (with ``id``, ``seq`` and ``ts``) only once it is committed to the journal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Every ``type`` an event can carry; device ones first, then the gateway's own."""

    PRESS = "press"
    HOLD = "hold"
    RELEASE = "release"
    OPEN = "open"
    CLOSE = "close"
    TAMPER = "tamper"
    TAMPER_OK = "tamper_ok"
    BOOT = "boot"
    LOW_BATTERY = "low_battery"
    SUPERVISION_LOST = "supervision_lost"
    SUPERVISION_RESTORED = "supervision_restored"
    REJECTED_FRAME = "rejected_frame"
    REJECTED_REPLAY = "rejected_replay"
    REJECTED_COMMAND = "rejected_command"
    ALARM_STATE = "alarm_state"
    ESCALATION_ATTEMPT = "escalation_attempt"
    POLICE_REPLY = "police_reply"
    POLICE_ACK = "police_ack"  # an officer's step at a police receiver (SPEC §6)
    TROUBLE = "trouble"
    TROUBLE_CLEARED = "trouble_cleared"
    GATEWAY_START = "gateway_start"
    TEST_REPORT = "test_report"
    LOGIN_FAILED = "login_failed"


DEVICE_INPUT_TYPES = frozenset(
    {
        EventType.PRESS,
        EventType.HOLD,
        EventType.RELEASE,
        EventType.OPEN,
        EventType.CLOSE,
        EventType.TAMPER,
        EventType.TAMPER_OK,
        EventType.BOOT,
    }
)


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event not yet committed. ``device`` is None for the gateway's own events."""

    type: EventType
    device: str | None = None
    value: int = 0
    drill: bool = False
    alarm_id: str | None = None
    detail: dict[str, Any] | None = None
    ts: float | None = None  # unix seconds when observed; the recorder fills it if None

    def __post_init__(self) -> None:
        if not isinstance(self.type, EventType):
            object.__setattr__(self, "type", EventType(self.type))
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise TypeError(f"event value must be an int, not {self.value!r}")


@dataclass(frozen=True, slots=True)
class Event:
    """A committed event, as published on ``<prefix>/<site>/events``."""

    id: str
    seq: int
    ts: str
    site: str
    ward: str | None
    room: str | None
    device: str | None
    kind: str | None
    type: EventType
    value: int
    drill: bool
    alarm_id: str | None
    detail: dict[str, Any] | None = field(default=None)
    #: the JSON text, once made: the journal stores it and MQTT publishes the same bytes,
    #: so an event is encoded once (not part of equality or repr)
    encoded: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "ts": self.ts,
            "site": self.site,
            "ward": self.ward,
            "room": self.room,
            "device": self.device,
            "kind": self.kind,
            "type": str(self.type),
            "value": self.value,
            "drill": self.drill,
            "alarm_id": self.alarm_id,
        }
        if self.detail:
            out["detail"] = self.detail
        return out

    def to_json(self) -> str:
        if self.encoded is None:
            object.__setattr__(
                self, "encoded", json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")))
        assert self.encoded is not None
        return self.encoded

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(
            id=d["id"],
            seq=int(d["seq"]),
            ts=d["ts"],
            site=d["site"],
            ward=d.get("ward"),
            room=d.get("room"),
            device=d.get("device"),
            kind=d.get("kind"),
            type=EventType(d["type"]),
            value=int(d.get("value", 0)),
            drill=bool(d.get("drill", False)),
            alarm_id=d.get("alarm_id"),
            detail=d.get("detail"),
        )
