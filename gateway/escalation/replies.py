"""Police SMS replies (SPEC §4): who may acknowledge, and the event a reply becomes.

A reply ``OK <code>`` from a configured number marks the alarm ``police_acknowledged``;
the engine does that when it processes the ``police_reply`` event built here. Anything
else is journaled (with why it was ignored) and changes nothing. Sans-I/O.
"""

from __future__ import annotations

import re

from gateway.config.schema import SiteConfig
from gateway.core.events import EventDraft, EventType
from gateway.escalation.messages import parse_police_reply

MAX_TEXT = 320  # characters of a reply kept in the journal
MAX_SENDER = 32  # characters of a non-numeric sender kept in the journal
ALPHANUMERIC = "alphanumeric"  # detail.sender_type of a sender that is not a phone number


def e164(number: str, country: str = "84") -> str:
    """A phone number in E.164 form: spaces and dashes dropped, a leading ``0`` read as
    ``+84`` (Vietnam), ``00`` as ``+``. Anything else is returned cleaned, unchanged."""
    cleaned = re.sub(r"[\s().-]", "", number or "")
    if cleaned.startswith("00"):
        return "+" + cleaned[2:]
    if cleaned.startswith("0"):
        return f"+{country}{cleaned[1:]}"
    if cleaned.isdigit() and cleaned.startswith(country) and len(cleaned) >= 11:
        return "+" + cleaned
    return cleaned


def reply_numbers(config: SiteConfig) -> frozenset[str]:
    """The numbers allowed to acknowledge: ``reply_numbers``, else the police ``numbers``
    and every further tier's (the district line the ladder reached answers like the ward),
    drill numbers too, so a drill can be acknowledged end to end."""
    sms = config.escalation.sms
    if sms is None:
        return frozenset()
    allowed = sms.reply_numbers or [*sms.numbers, *sms.drill_numbers,
                                    *(n for tier in sms.next_tiers for n in tier)]
    return frozenset(e164(n) for n in allowed)


def reply_draft(config: SiteConfig, sender: str, text: str, *, numeric: bool) -> EventDraft:
    """The ``police_reply`` event for one received SMS. ``numeric`` is False when the
    sender's type of address is not a phone number (alphanumeric, ...): such a sender is
    never authorised, even if its name reads like a configured number (SPEC §4)."""
    number = e164(sender) if numeric else (sender or "")[:MAX_SENDER]
    detail = {
        "from": number,
        "text": (text or "")[:MAX_TEXT],
        "code": parse_police_reply(text or ""),
        "authorised": numeric and number in reply_numbers(config),
    }
    if not numeric:
        detail["sender_type"] = ALPHANUMERIC
    return EventDraft(EventType.POLICE_REPLY, detail=detail)
