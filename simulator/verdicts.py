"""What the gateway did with something the technician sent it, read from its journal.

"SMS delivered to the modem" or "ack published" says only that the message left the
simulator; whether the gateway acted on it, and if not why, is in the journal: a
``police_reply`` carries ``ignored`` (the reason) or the alarm it acknowledged; a desk
command becomes an ``alarm_state`` with its ``action``, or a ``rejected_command`` with its
``reason``. Each judge takes the events journaled since the action and answers one line,
or None while the gateway has not decided yet. Sans-I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.escalation.replies import e164

Judge = Callable[[list[dict[str, Any]]], str | None]


def sms_judge(sender: str) -> Judge:
    """The verdict on an SMS from ``sender``: the alarm(s) it acknowledged, or why not."""
    number = e164(sender)

    def judge(events: list[dict[str, Any]]) -> str | None:
        for i, event in enumerate(events):
            detail = event.get("detail") or {}
            if event.get("type") != "police_reply" or detail.get("from") != number:
                continue
            if detail.get("ignored"):
                return f"ignored: {detail['ignored']}"
            acked = [e for e in events[i + 1:] if e.get("type") == "alarm_state"
                     and (e.get("detail") or {}).get("state") == "police_acknowledged"]
            if not acked:
                return None  # the acknowledgement follows in the same commit, or soon
            devices = ", ".join(sorted({str(e.get("device")) for e in acked}))
            return f"accepted: alarm {detail.get('code')} police acknowledged ({devices})"
        return None

    return judge


def command_judge(alarm_id: str, action: str) -> Judge:
    """The verdict on the desk's ``action`` for ``alarm_id``: the state it led to, or why
    the gateway rejected it."""

    def judge(events: list[dict[str, Any]]) -> str | None:
        for event in events:
            detail = event.get("detail") or {}
            if event.get("type") == "rejected_command" and detail.get("alarm") == alarm_id:
                return f"rejected: {detail.get('reason')}"
            if (event.get("type") == "alarm_state" and event.get("alarm_id") == alarm_id
                    and detail.get("action") == action):
                return f"accepted: alarm is {detail.get('state')}"
        return None

    return judge
