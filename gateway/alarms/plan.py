"""Escalation plans: what the engine decided, in the form the dispatcher executes.

A plan is a plain dict journaled inside the deciding ``alarm_state`` event (detail
``escalation``), so the dispatcher needs nothing but the journal to do its work, and a
replay after a crash sees exactly the same escalation ids. Sans-I/O.
"""

from __future__ import annotations

from typing import Any

from gateway.alarms.model import Alarm, escalation_id, new_entry
from gateway.config.schema import SiteConfig
from gateway.core.clock import rfc3339
from gateway.core.enums import Channel, EntryStatus
from gateway.core.redact import redact_url


def targets(config: SiteConfig, *, drill: bool) -> list[tuple[str, str]]:
    """``(channel, target)`` of every configured delivery: the HTTP URL, each police
    receiver's URL (each its own delivery, SPEC §6), each SMS number, each DC-09
    receiving centre (by name).

    Drills go to ``drill_url`` and ``sms.drill_numbers`` where configured; a centre gets
    a drill as its own code (``RX``), so it needs no separate address. A URL's
    credentials are masked: the target is journaled and shown, never used to connect.
    """
    out: list[tuple[str, str]] = []
    http, sms = config.escalation.http, config.escalation.sms
    for channel in ([http] if http is not None else []) + list(config.escalation.receivers):
        url = channel.drill_url if drill and channel.drill_url else channel.url
        out.append(("http", redact_url(url)))
    if sms is not None:
        numbers = sms.drill_numbers if drill and sms.drill_numbers else sms.numbers
        out.extend(("sms", n) for n in numbers)
    dc09 = config.escalation.dc09
    if dc09 is not None:
        out.extend(("dc09", r.name) for r in dc09.receivers)
    return out


def snapshot(alarm: Alarm) -> dict[str, Any]:
    """What the messages and the HTTP body need of an alarm, as of the decision."""
    return {
        "id": alarm.id, "code": alarm.code, "type": alarm.type, "drill": alarm.drill,
        "device": alarm.device, "ward": alarm.ward, "room": alarm.room,
        "raised_at": rfc3339(alarm.raised_at), "press_count": alarm.press_count,
        "acknowledged_locally": alarm.acknowledged_locally,
    }


def build_plan(
    config: SiteConfig, key: str, round_no: int, members: list[Alarm], reason: str, now: float
) -> dict[str, Any]:
    """The plan for escalating ``members`` (one alarm, or a mass group keyed ``key``)."""
    primary = members[0]
    alarm = snapshot(primary)
    alarm["press_count"] = sum(m.press_count for m in members)
    deliveries = [
        {"escalation_id": escalation_id(key, ch, target, round_no), "channel": ch,
         "target": target}
        for ch, target in targets(config, drill=primary.drill)
    ]
    return {
        "key": key, "round": round_no, "reason": reason, "mass": len(members) > 1,
        "delivery": config.policy.delivery, "fallback_after_s": config.policy.fallback_after_s,
        "decided_at": rfc3339(now), "alarms": [m.id for m in members], "count": len(members),
        "alarm": alarm, "deliveries": deliveries,
    }


def apply_plan(plan: dict[str, Any], alarm: Alarm) -> None:
    """Record the plan's deliveries in ``alarm.escalations``; in ``fallback`` mode an SMS
    waits as ``standby`` until HTTP fails or runs out of time."""
    fallback = plan["delivery"] == "fallback" and any(
        d["channel"] == Channel.HTTP for d in plan["deliveries"])
    for d in plan["deliveries"]:
        if alarm.entry(d["escalation_id"]) is None:
            held = fallback and d["channel"] == Channel.SMS
            status = EntryStatus.STANDBY if held else EntryStatus.PENDING
            alarm.escalations.append(new_entry(d["escalation_id"], d["channel"], d["target"],
                                               status))
