"""The alarm document (SPEC §3) and the rules of its life cycle, with no I/O and no clock.

An alarm moves ``raised`` → (``acknowledged``) → (``escalated``) → (``police_acknowledged``)
→ ``resolved``; the optional steps may be skipped, never walked back. :data:`TRANSITIONS`
is the whole rule book: the engine, the command parser and the tests all read it.
Escalation ids are derived (uuid5) from what is escalated, so a crash and a replay of the
journal can never deliver one escalation under two ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.core.clock import parse_rfc3339, rfc3339
from gateway.core.enums import FINAL_STATUSES, AttemptStatus, Channel, EntryStatus, LedState
from gateway.core.events import EventDraft, EventType

RAISED = "raised"
ACKNOWLEDGED = "acknowledged"
ESCALATED = "escalated"
POLICE_ACKNOWLEDGED = "police_acknowledged"
RESOLVED = "resolved"
STATES = (RAISED, ACKNOWLEDGED, ESCALATED, POLICE_ACKNOWLEDGED, RESOLVED)
OPEN_STATES = frozenset(STATES[:-1])

#: state → the states it may move to (forward only: a skipped step stays skipped)
TRANSITIONS: dict[str, frozenset[str]] = {
    s: frozenset(STATES[i + 1:]) for i, s in enumerate(STATES)
}

#: the LED a device shows for its alarm's state (SPEC §2)
LEDS = {RAISED: LedState.RAISED, ACKNOWLEDGED: LedState.ACKNOWLEDGED,
        ESCALATED: LedState.ESCALATED, POLICE_ACKNOWLEDGED: LedState.POLICE_ACKNOWLEDGED,
        RESOLVED: LedState.OFF}

_NAMESPACE = uuid.UUID("6b3f1f4e-3c1e-5d7a-9a55-0b1d2e3f4a5b")


def escalation_id(key: str, channel: str, target: str, round_no: int) -> str:
    """Deterministic id of one delivery: ``key`` is the alarm id (or a mass group id),
    ``round_no`` counts escalations of that key (1 for the first)."""
    return str(uuid.uuid5(_NAMESPACE, f"{key}|{channel}|{target}|{round_no}"))


def alarm_type(kind: str, event_type: str) -> str:
    """The alarm type the messages name (``gateway.escalation.messages.ALARM_TYPES``)."""
    if event_type == "hold" or kind == "duress_button":
        return "duress"
    if event_type == "open":
        return "intrusion" if kind == "sensor" else "door"
    return "panic"


@dataclass
class Alarm:
    """One alarm, as published on ``alarm/<id>`` plus the private fields a restart needs.

    ``escalate_at`` is the absolute wall-clock deadline (unix s) of a running police timer,
    so the deadline survives a restart unchanged; ``remind_at`` likewise for the next SMS
    reminder (``[escalation.reminders]``); ``rounds`` counts escalation decisions;
    ``group`` is the mass-alarm group the alarm joined, if any; ``taken_by``/``taken_at``
    (unix s) name the guard whose ``ack`` first took the alarm, whatever its state then.
    """

    id: str
    code: str
    device: str
    ward: str | None
    room: str | None
    type: str
    drill: bool
    raised_at: float
    state: str = RAISED
    press_count: int = 1
    escalations: list[EscalationEntry] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    escalate_at: float | None = None
    remind_at: float | None = None
    rounds: int = 0
    group: str | None = None
    taken_by: str | None = None
    taken_at: float | None = None

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def acknowledged_locally(self) -> bool:
        """A guard has taken the alarm (an ``ack`` in any state)."""
        return self.taken_by is not None

    def escalation_pending(self) -> bool:
        """True while a decided escalation has not been delivered on any channel yet."""
        idle = (EntryStatus.SUPERSEDED, EntryStatus.STANDBY)
        live = [e for e in self.escalations if e.status not in idle]
        delivered = any(e.status is EntryStatus.DELIVERED for e in live)
        return bool(live) and not delivered and not all(
            e.status is EntryStatus.FAILED for e in live
        )

    def sms_on_its_way(self) -> bool:
        """An SMS of this alarm is still being sent (pending or retrying): the reminder
        ladder waits for it rather than stacking another round behind it."""
        moving = (EntryStatus.PENDING, EntryStatus.RETRYING)
        return any(e.channel is Channel.SMS and e.status in moving for e in self.escalations)

    def entry(self, esc_id: str) -> EscalationEntry | None:
        return next((e for e in self.escalations if e.escalation_id == esc_id), None)

    def fold(self, esc_id: str, detail: dict[str, Any]) -> EscalationEntry | None:
        """Fold one ``escalation_attempt`` into the entry ``esc_id`` (if this alarm has
        it); returns the entry as it now stands."""
        for i, entry in enumerate(self.escalations):
            if entry.escalation_id == esc_id:
                self.escalations[i] = entry.folded(detail)
                return self.escalations[i]
        return None

    def move(self, state: str, ts: float, by: str, note: str = "") -> None:
        """Apply a transition already checked against :data:`TRANSITIONS`."""
        self.state = state
        self.history.append(_entry(ts, state, by, note))
        if state != RAISED:
            self.escalate_at = None  # acknowledged, escalated or later: no police timer
        if state in (POLICE_ACKNOWLEDGED, RESOLVED):
            self.remind_at = None  # the police answered, or it is over: no more reminders

    def take(self, ts: float, by: str, note: str = "") -> None:
        """An ``ack``: the security desk has taken the alarm (SPEC §3). In ``raised`` it
        moves to ``acknowledged`` (no police timer); in any later open state the state
        stays and the police are not recalled. The first one sets ``taken_by``/``taken_at``;
        every one is in the history, marked ``"action": "ack"``."""
        if self.taken_by is None:
            self.taken_by, self.taken_at = by, ts
        if self.state == RAISED:
            self.move(ACKNOWLEDGED, ts, by, note)
        else:
            self.history.append(_entry(ts, self.state, by, note))
        self.history[-1]["action"] = "ack"

    def document(self) -> dict[str, Any]:
        """The retained ``alarm/<id>`` payload (SPEC §3)."""
        return {
            "id": self.id,
            "code": self.code,
            "state": self.state,
            "type": self.type,
            "device": self.device,
            "ward": self.ward,
            "room": self.room,
            "drill": self.drill,
            "raised_at": rfc3339(self.raised_at),
            "press_count": self.press_count,
            "taken_by": self.taken_by,
            "taken_at": rfc3339(self.taken_at) if self.taken_at is not None else None,
            "escalations": [e.to_json() for e in self.escalations],
            "history": list(self.history),
        }

    def private(self) -> dict[str, Any]:
        """The private ``alarm:<id>`` record: only what :meth:`document` does not carry
        (exact unix times, timers, rounds, group); defaults are left out. Every alarm change
        commits its document and this record together, so a restart rebuilds the alarm from
        both (:meth:`restore`); keeping the record small keeps it on its b-tree leaf (no
        overflow page), which is what each press pays on the SD card (docs/benchmarks.md)."""
        out: dict[str, Any] = {"raised_at": self.raised_at}
        for key in _PRIVATE:
            value = getattr(self, key)
            if value is not None and value != 0:
                out[key] = value
        return out

    @classmethod
    def restore(cls, document: dict[str, Any], private: dict[str, Any]) -> Alarm:
        """The alarm as :meth:`document` and :meth:`private` recorded it."""
        return cls(
            id=str(document["id"]), code=str(document["code"]), device=str(document["device"]),
            ward=document.get("ward"), room=document.get("room"), type=str(document["type"]),
            drill=bool(document["drill"]), raised_at=float(private["raised_at"]),
            state=str(document["state"]), press_count=int(document["press_count"]),
            escalations=[EscalationEntry.from_json(e) for e in document.get("escalations", [])],
            history=list(document.get("history", [])),
            escalate_at=private.get("escalate_at"), remind_at=private.get("remind_at"),
            rounds=int(private.get("rounds", 0)), group=private.get("group"),
            taken_by=document.get("taken_by"), taken_at=private.get("taken_at"),
        )

    @staticmethod
    def is_full_store(data: dict[str, Any]) -> bool:
        """An ``alarm:<id>`` record in the older, whole form (:meth:`to_store`), which
        carried the document too."""
        return "history" in data

    def to_store(self) -> dict[str, Any]:
        """Everything in one record: the form journals kept under ``alarm:<id>`` before the
        record shrank to :meth:`private` (still read by :meth:`from_store`)."""
        return {
            **{k: getattr(self, k) for k in _STORED},
            "escalations": [e.to_json() for e in self.escalations],
            "history": list(self.history),
        }

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> Alarm:
        alarm = cls(**{k: data[k] for k in (*_STORED, "history") if k in data},
                    escalations=[EscalationEntry.from_json(e) for e in data.get("escalations", [])])
        if alarm.taken_by is None:  # a record from before taken_by: its first acknowledgement
            first = next((h for h in alarm.history if h.get("state") == ACKNOWLEDGED), None)
            if first is not None:
                alarm.taken_by, alarm.taken_at = first.get("by"), _parse_ts(first.get("ts"))
        return alarm


_STORED = ("id", "code", "device", "ward", "room", "type", "drill", "raised_at", "state",
           "press_count", "escalate_at", "remind_at", "rounds", "group", "taken_by", "taken_at")
#: what :meth:`Alarm.private` keeps beside ``raised_at``: the fields the document does not
#: carry, or carries only to the millisecond (``taken_at``)
_PRIVATE = ("taken_at", "escalate_at", "remind_at", "rounds", "group")
#: attempt statuses that record a decision, not a try: they do not count as attempts
_NOT_AN_ATTEMPT = frozenset({AttemptStatus.ACTIVATED, AttemptStatus.SUPERSEDED,
                             AttemptStatus.RATE_LIMITED})


def _entry(ts: float, state: str, by: str, note: str) -> dict[str, Any]:
    """One ``history`` item; ``note`` (a resolution's outcome, a guard's remark) only when
    one was given."""
    entry: dict[str, Any] = {"ts": rfc3339(ts), "state": state, "by": by}
    if note:
        entry["note"] = note
    return entry


def reminder_step(ts: float, state: str, by: str, round_no: int) -> dict[str, Any]:
    """A ``history`` item for an SMS reminder round (``[escalation.reminders]``), the
    state unchanged, marked ``"action": "reminder"`` with the escalation ``round``."""
    return {**_entry(ts, state, by, ""), "action": "reminder", "round": round_no}


def police_step(ts: float, state: str, by: str, note: str = "") -> dict[str, Any]:
    """A ``history`` item for what the police did at a receiver without changing the
    alarm's state: ``on_scene`` or ``closed`` (SPEC §6), marked ``"action": "police"``."""
    return {**_entry(ts, state, by, note), "action": "police"}


def _parse_ts(text: Any) -> float | None:
    """RFC 3339 UTC (as :func:`rfc3339` writes it) to unix seconds, or None."""
    try:
        return parse_rfc3339(text) if isinstance(text, str) else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationEntry:
    """One ``escalations[]`` item of an alarm: a delivery and where it stands
    (``standby``: an SMS held back for fallback). Published and stored as
    :meth:`to_json`; changed only by folding attempts in (:meth:`folded`)."""

    escalation_id: str
    channel: Channel
    target: str
    status: EntryStatus = EntryStatus.PENDING
    attempts: int = 0
    delivered_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"escalation_id": self.escalation_id, "channel": str(self.channel),
                "target": self.target, "status": str(self.status), "attempts": self.attempts,
                "delivered_at": self.delivered_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EscalationEntry:
        return cls(escalation_id=str(data["escalation_id"]), channel=Channel(data["channel"]),
                   target=str(data["target"]), status=EntryStatus(data["status"]),
                   attempts=int(data.get("attempts") or 0),
                   delivered_at=data.get("delivered_at"))

    def folded(self, detail: dict[str, Any]) -> EscalationEntry:
        """The entry once one ``escalation_attempt`` (its ``detail``) is folded in."""
        if self.status is EntryStatus.DELIVERED:
            return self
        status = str(detail.get("status"))
        new: EntryStatus = self.status
        if status in FINAL_STATUSES:
            new = EntryStatus(status)
        elif status == AttemptStatus.ACTIVATED:
            new = EntryStatus.PENDING
        elif status != AttemptStatus.RATE_LIMITED and detail.get("will_retry"):
            new = EntryStatus.RETRYING
        attempts = self.attempts + (0 if status in _NOT_AN_ATTEMPT else 1)
        delivered_at = (detail.get("delivered_at") if status == AttemptStatus.DELIVERED
                        else self.delivered_at)
        return replace(self, status=new, attempts=attempts, delivered_at=delivered_at)


def new_entry(esc_id: str, channel: Channel, target: str,
              status: EntryStatus = EntryStatus.PENDING) -> EscalationEntry:
    """An ``escalations[]`` item; ``standby`` marks an SMS held back for fallback."""
    return EscalationEntry(escalation_id=esc_id, channel=channel, target=target, status=status)


def next_code(taken: set[str], seed: int) -> str:
    """A 4-digit code not in ``taken`` (open alarms' codes), starting from ``seed``."""
    for step in range(10_000):
        code = f"{(seed + step * 7919) % 10_000:04d}"
        if code not in taken:
            return code
    raise RuntimeError("10 000 alarms open at once: no free code")


def rejected(alarm_id: str, reason: str, detail: dict[str, Any], *, known: bool) -> EventDraft:
    """The ``rejected_command`` event for a command that changes nothing (SPEC §3)."""
    keep: dict[str, Any] = {k: detail[k] for k in ("action", "by", "origin") if k in detail}
    return EventDraft(EventType.REJECTED_COMMAND, alarm_id=alarm_id if known else None,
                      detail={**keep, "alarm": alarm_id[:80], "reason": reason})


def annotate(draft: EventDraft, alarm_id: str) -> EventDraft:
    """``draft`` attached to alarm ``alarm_id`` (drafts are frozen: a copy)."""
    return EventDraft(draft.type, draft.device, draft.value, draft.drill, alarm_id,
                      draft.detail, draft.ts)


def with_detail(draft: EventDraft, detail: dict[str, Any]) -> EventDraft:
    """``draft`` with ``detail`` in place of its own (drafts are frozen: a copy)."""
    return EventDraft(draft.type, draft.device, draft.value, draft.drill, draft.alarm_id,
                      detail, draft.ts)
