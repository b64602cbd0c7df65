"""What the gateway answers a police SMS (SPEC §4): a confirmation, an explanation, or nothing.

An officer who replies ``OK 3769`` must learn that it was understood; at 3 a.m. a reply
that silently matched nothing is worse than none. So, read from the journaled
``police_reply`` (after the engine has judged it):

- it acknowledged an alarm, or names one the police acknowledged already: one short
  confirmation naming the ward and room (every room for a mass alarm);
- it came from a configured number but matched nothing: one short explanation (the code
  is unknown: the open codes are listed; or the text is not ``OK <code>``);
- anyone else (an unknown or alphanumeric sender) gets nothing: the gateway never talks
  to strangers, nor feeds an SMS loop.

An explanation goes to one number at most once per :data:`EXPLAIN_EVERY_S`, so an
auto-responder answering our explanation cannot start a loop; the confirmation of one alarm
to one number at most once per :data:`CONFIRM_EVERY_S` (a reply read twice, or sent twice, is
confirmed once). Sans-I/O: the dispatcher
sends what :func:`answer_for` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from gateway.alarms.model import POLICE_ACKNOWLEDGED, Alarm
from gateway.config.schema import SiteConfig
from gateway.core.events import Event
from gateway.escalation.sms_check import alarm_facts
from gateway.escalation.sms_texts import SmsTexts, TextKind

EXPLAIN_EVERY_S = 300.0
"""At most one explanation per number in this many seconds (monotonic)."""
CONFIRM_EVERY_S = 60.0
"""At most one confirmation per number and alarm (or mass group) in this many seconds."""


class Purpose(StrEnum):
    """Why an answer is sent; journaled as ``escalation_attempt.purpose``."""

    CONFIRMATION = "confirmation"
    EXPLANATION = "explanation"


@dataclass(frozen=True, slots=True)
class Answer:
    """One SMS to send back: to ``number``, ``text`` as the phone shows it, about
    ``alarms`` (empty for an explanation that names none)."""

    number: str
    text: str
    purpose: Purpose
    alarms: tuple[str, ...] = ()
    drill: bool = False


def answer_for(config: SiteConfig, texts: SmsTexts, event: Event,
               find: Any) -> Answer | None:
    """The answer to the journaled ``police_reply`` ``event``, or None.

    ``find`` is the engine (``get``, ``by_code``, ``open_alarms``): the alarms as they are
    now, which for a reply just processed is as the reply left them."""
    detail = event.detail or {}
    number = detail.get("from")
    if not detail.get("authorised") or detail.get("sender_type") or not isinstance(number, str):
        return None
    code = detail.get("code")
    acked = find.get(event.alarm_id) if event.alarm_id and not detail.get("ignored") else None
    if acked is None and isinstance(code, str):
        known = find.by_code(code)  # a second officer answering, or the same one twice
        if known is not None and known.state == POLICE_ACKNOWLEDGED:
            acked = known
    if acked is not None:
        # the rooms the police have acknowledged: a member whose alarm had not reached
        # them yet was not acknowledged by this reply, so it is not confirmed either
        group = [a for a in find.open_alarms() if acked.group and a.group == acked.group
                 and a.state == POLICE_ACKNOWLEDGED]
        members = group if len(group) > 1 else [acked]
        text = texts.render(TextKind.CONFIRMATION, _facts(config, acked, members))
        return Answer(number, text, Purpose.CONFIRMATION, tuple(a.id for a in members),
                      acked.drill)
    sample = _facts(config, None, [])
    if isinstance(code, str):
        open_codes = tuple(a.code for a in find.open_alarms() if a.rounds or a.group)
        text = texts.render(TextKind.NO_MATCH, replace(sample, code=code, open_codes=open_codes))
    else:
        text = texts.render(TextKind.NOT_UNDERSTOOD, sample)
    return Answer(number, text, Purpose.EXPLANATION)


def _facts(config: SiteConfig, alarm: Alarm | None, members: list[Alarm]) -> Any:
    if alarm is None:
        return alarm_facts(config, "panic", None, None, "", 0.0)
    facts = alarm_facts(config, alarm.type, alarm.ward, alarm.room, alarm.code,
                        alarm.raised_at, drill=alarm.drill, device=alarm.device)
    if len(members) > 1:
        pairs = tuple((_ward_short(config, m.ward), m.room or "-") for m in members)
        facts = replace(facts, members=pairs)
    return facts


def _ward_short(config: SiteConfig, ward_id: str | None) -> str:
    ward = config.ward(ward_id or "")
    return (ward.short_name or ward.name) if ward else (ward_id or "-")


class ExplainLimit:
    """Remembers when each number last got an explanation, and each (number, alarms) a
    confirmation (monotonic seconds)."""

    def __init__(self, every_s: float = EXPLAIN_EVERY_S,
                 confirm_every_s: float = CONFIRM_EVERY_S) -> None:
        self.every_s = every_s
        self.confirm_every_s = confirm_every_s
        self._last: dict[str, float] = {}

    def allow(self, answer: Answer, now: float) -> bool:
        explaining = answer.purpose == Purpose.EXPLANATION
        # a confirmation is keyed on the alarms it confirms, not on its text: a new alarm
        # in the same room may draw the code of one confirmed a minute ago, and its OK
        # must still be answered
        key = answer.number if explaining else f"{answer.number}|{','.join(answer.alarms)}"
        every = self.every_s if explaining else self.confirm_every_s
        last = self._last.get(key)
        if last is not None and now - last < every:
            return False
        self._last[key] = now
        return True
