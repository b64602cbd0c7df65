"""Escalation plans: what the engine decided, in the form the dispatcher executes.

A :class:`Plan` is typed inside the gateway and journaled (as :meth:`Plan.to_json`) inside
the deciding ``alarm_state`` event (detail ``escalation``), so the dispatcher needs nothing
but the journal to do its work (:meth:`Plan.from_json`), and a replay after a crash sees
exactly the same escalation ids. Sans-I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.alarms.model import Alarm, escalation_id, new_entry
from gateway.config.schema import SiteConfig
from gateway.core.clock import rfc3339
from gateway.core.enums import Channel, DeliveryMode, EntryStatus
from gateway.core.redact import redact_url


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One delivery of a plan: its escalation id, the channel and the target (a URL with
    its credentials masked, a phone number, a receiving centre's name). ``reminder`` is
    how many earlier rounds this number already had (its SMS reads ``NHẮC LẠI <n>``);
    0 for a number hearing of the alarm for the first time."""

    escalation_id: str
    channel: Channel
    target: str
    reminder: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"escalation_id": self.escalation_id,
                               "channel": str(self.channel), "target": self.target}
        if self.reminder:
            out["reminder"] = self.reminder
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(escalation_id=str(data["escalation_id"]), channel=Channel(data["channel"]),
                   target=str(data["target"]), reminder=int(data.get("reminder", 0)))


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSnapshot:
    """What the messages and the HTTP body need of an alarm, as of the decision."""

    id: str
    code: str
    type: str
    drill: bool
    device: str
    ward: str | None
    room: str | None
    raised_at: str  # RFC 3339 UTC
    press_count: int
    acknowledged_locally: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "type": self.type, "drill": self.drill,
                "device": self.device, "ward": self.ward, "room": self.room,
                "raised_at": self.raised_at, "press_count": self.press_count,
                "acknowledged_locally": self.acknowledged_locally}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmSnapshot:
        return cls(id=str(data["id"]), code=str(data["code"]), type=str(data["type"]),
                   drill=bool(data["drill"]), device=str(data["device"]),
                   ward=data.get("ward"), room=data.get("room"),
                   raised_at=str(data["raised_at"]), press_count=int(data["press_count"]),
                   acknowledged_locally=bool(data.get("acknowledged_locally", False)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One alarm of a mass alarm, as its SMS names it."""

    id: str
    ward: str | None
    room: str | None
    code: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ward": self.ward, "room": self.room, "code": self.code}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        return cls(id=str(data["id"]), ward=data.get("ward"), room=data.get("room"),
                   code=str(data.get("code", "")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Whose attempts are journaled: the alarms (the first one names the event) and
    whether they are a drill. A :class:`Plan` is one; so is a lone delivery superseded
    outside any plan."""

    alarms: tuple[str, ...]
    drill: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One escalation decision: ``key`` is the alarm id (or the mass group's), ``round``
    counts the key's escalations; ``replayed`` marks a plan decided before this run
    (read back from the journal after a restart; never journaled)."""

    key: str
    round: int
    reason: str
    mass: bool
    delivery: DeliveryMode
    fallback_after_s: int
    decided_at: str  # RFC 3339 UTC
    alarms: tuple[str, ...]
    count: int
    alarm: AlarmSnapshot
    deliveries: tuple[Delivery, ...]
    members: tuple[Member, ...] = ()
    replayed: bool = field(default=False, compare=False)

    @property
    def drill(self) -> bool:
        return self.alarm.drill

    def to_json(self) -> dict[str, Any]:
        """The journaled form (the ``escalation`` detail of the deciding event)."""
        out: dict[str, Any] = {
            "key": self.key, "round": self.round, "reason": self.reason, "mass": self.mass,
            "delivery": str(self.delivery), "fallback_after_s": self.fallback_after_s,
            "decided_at": self.decided_at, "alarms": list(self.alarms), "count": self.count,
            "alarm": self.alarm.to_json(), "deliveries": [d.to_json() for d in self.deliveries],
        }
        if self.members:
            out["members"] = [m.to_json() for m in self.members]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """A journaled plan; ``KeyError``, ``TypeError`` or ``ValueError`` when it is not one."""
        return cls(
            key=str(data["key"]), round=int(data["round"]), reason=str(data["reason"]),
            mass=bool(data["mass"]), delivery=DeliveryMode(data["delivery"]),
            fallback_after_s=int(data["fallback_after_s"]),
            decided_at=str(data["decided_at"]),
            alarms=tuple(str(a) for a in data["alarms"]), count=int(data["count"]),
            alarm=AlarmSnapshot.from_json(data["alarm"]),
            deliveries=tuple(Delivery.from_json(d) for d in data["deliveries"]),
            members=tuple(Member.from_json(m) for m in data.get("members") or ()),
        )


def targets(config: SiteConfig, *, drill: bool) -> list[tuple[Channel, str]]:
    """``(channel, target)`` of every configured delivery: the HTTP URL, each police
    receiver's URL (each its own delivery, SPEC §6), each SMS number, each DC-09
    receiving centre (by name).

    Drills go to ``drill_url`` and ``sms.drill_numbers`` where configured; a centre gets
    a drill as its own code (``RX``), so it needs no separate address. A URL's
    credentials are masked: the target is journaled and shown, never used to connect.
    """
    out: list[tuple[Channel, str]] = []
    http, sms = config.escalation.http, config.escalation.sms
    for channel in ([http] if http is not None else []) + list(config.escalation.receivers):
        url = channel.drill_url if drill and channel.drill_url else channel.url
        out.append((Channel.HTTP, redact_url(url)))
    if sms is not None:
        numbers = sms.drill_numbers if drill and sms.drill_numbers else sms.numbers
        out.extend((Channel.SMS, n) for n in numbers)
    dc09 = config.escalation.dc09
    if dc09 is not None:
        out.extend((Channel.DC09, r.name) for r in dc09.receivers)
    return out


def snapshot(alarm: Alarm, press_count: int | None = None) -> AlarmSnapshot:
    """What the messages and the HTTP body need of ``alarm``, as of the decision."""
    return AlarmSnapshot(
        id=alarm.id, code=alarm.code, type=alarm.type, drill=alarm.drill, device=alarm.device,
        ward=alarm.ward, room=alarm.room, raised_at=rfc3339(alarm.raised_at),
        press_count=alarm.press_count if press_count is None else press_count,
        acknowledged_locally=alarm.acknowledged_locally,
    )


def build_plan(
    config: SiteConfig, key: str, round_no: int, members: list[Alarm], reason: str, now: float
) -> Plan:
    """The plan for escalating ``members`` (one alarm, or a mass group keyed ``key``)."""
    deliveries = tuple(
        Delivery(escalation_id=escalation_id(key, ch, target, round_no), channel=ch,
                 target=target)
        for ch, target in targets(config, drill=members[0].drill)
    )
    return _plan(config, key, round_no, members, reason, now, deliveries)


def _plan(config: SiteConfig, key: str, round_no: int, members: list[Alarm], reason: str,
          now: float, deliveries: tuple[Delivery, ...]) -> Plan:
    """A plan of ``deliveries`` for ``members`` (the first names the alarm)."""
    return Plan(
        key=key, round=round_no, reason=reason, mass=len(members) > 1,
        delivery=DeliveryMode(config.policy.delivery),
        fallback_after_s=config.policy.fallback_after_s, decided_at=rfc3339(now),
        alarms=tuple(m.id for m in members), count=len(members),
        alarm=snapshot(members[0], sum(m.press_count for m in members)),
        deliveries=deliveries,
        # a mass alarm's SMS names every room: each member's ward, room and code
        members=tuple(Member(id=m.id, ward=m.ward, room=m.room, code=m.code)
                      for m in members) if len(members) > 1 else (),
    )


def ladder_numbers(config: SiteConfig, round_no: int, *, drill: bool) -> list[str]:
    """The SMS numbers of round ``round_no`` (1 = the first escalation): the police
    numbers, and after every ``rounds_per_tier`` rounds the next tier of
    ``[escalation.sms] next_tiers`` added to them (the ward police keep getting it while
    the district duty line joins). Drills never climb: they stay with the drill numbers
    (or the police numbers where none are set), so a drill never reaches a further tier."""
    sms = config.escalation.sms
    if sms is None:
        return []
    if drill:
        return list(sms.drill_numbers or sms.numbers)
    tier = min((round_no - 1) // config.escalation.reminders.rounds_per_tier,
               len(sms.next_tiers))
    numbers = list(sms.numbers)
    for extra in sms.next_tiers[:tier]:
        numbers.extend(n for n in extra if n not in numbers)
    return numbers


def build_reminder(config: SiteConfig, key: str, round_no: int, members: list[Alarm],
                   now: float) -> Plan:
    """A reminder round: SMS only (the hotline and the receiving centres have the alarm
    and their own acknowledgement; a phone in a pocket is what a reminder is for), to the
    numbers of the ladder's current tier, each told how many times it had it before."""
    primary = members[0]
    sent = {e.escalation_id for e in primary.escalations
            if e.channel is Channel.SMS and e.status is not EntryStatus.SUPERSEDED}

    def earlier(number: str) -> int:
        """Earlier rounds of this key that were for ``number``."""
        return sum(escalation_id(key, Channel.SMS, number, r) in sent
                   for r in range(1, round_no))

    deliveries = tuple(
        Delivery(escalation_id=escalation_id(key, Channel.SMS, number, round_no),
                 channel=Channel.SMS, target=number, reminder=earlier(number))
        for number in ladder_numbers(config, round_no, drill=primary.drill))
    return _plan(config, key, round_no, members, "reminder", now, deliveries)


def apply_plan(plan: Plan, alarm: Alarm) -> None:
    """Record the plan's deliveries in ``alarm.escalations``; in ``fallback`` mode an SMS
    waits as ``standby`` until HTTP fails or runs out of time."""
    fallback = plan.delivery is DeliveryMode.FALLBACK and any(
        d.channel is Channel.HTTP for d in plan.deliveries)
    for d in plan.deliveries:
        if alarm.entry(d.escalation_id) is None:
            held = fallback and d.channel is Channel.SMS
            status = EntryStatus.STANDBY if held else EntryStatus.PENDING
            alarm.escalations.append(new_entry(d.escalation_id, d.channel, d.target, status))
