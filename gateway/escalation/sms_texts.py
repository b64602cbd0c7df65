"""The SMS texts a police phone shows (SPEC §4): one part per alarm by default.

One part is 70 UCS2 characters with Vietnamese diacritics, or 160 GSM 7-bit characters
where the site chooses text without diacritics (``[messages] charset = "gsm7"``). The
defaults name the type, the site and ward by their short names, the room as written, the
time as ``HH:MM`` and how to acknowledge; for the example hospital:

    KHẨN CẤP BVĐK Hòa Bình, Cấp cứu, Giường 11, 12:10. Đáp: OK 3769      (63 characters)

Every text is a template with named fields (:data:`gateway.escalation.messages.FIELDS`); a site may
replace any of them (``[messages] sms`` and ``[messages.templates]``). The code and the
time already make each alarm's text unique, so no reference is added; a reminder carries
its number (``NHẮC LẠI 2``), and a resend after a modem error appends ``(2)`` where it still
fits the same parts, so an operator's anti-spam filter never holds back a repeat.
``check-config`` renders every device's texts with :mod:`gateway.escalation.sms_check`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gateway.core.smstext import plain_text, shape
from gateway.escalation.messages import DEFAULT_TZ, DRILL_PREFIX, AlarmFacts, render

log = logging.getLogger(__name__)


class TextKind(StrEnum):
    """Which text: each has its own template."""

    ALARM = "alarm"  # a single alarm, first round (duress is an alarm with its own type)
    DRILL = "drill"  # after the [DIỄN TẬP] prefix
    REMINDER = "reminder"  # a later round to a number that had the alarm already
    MASS = "mass"  # one text for a mass alarm, every room named
    CONFIRMATION = "confirmation"  # the answer to a valid OK <code>
    NO_MATCH = "no_match"  # OK <code> from a police number, no open alarm has that code
    NOT_UNDERSTOOD = "not_understood"  # a police number's reply that is not OK <code>


DEFAULTS: dict[str, dict[TextKind, str]] = {
    "vi": {
        TextKind.ALARM: "{type} {site_short}, {ward_short}, {room}, {time}. Đáp: OK {code}",
        TextKind.DRILL: "{site_short}, {ward_short}, {room}, {time}. Đáp: OK {code}",
        TextKind.REMINDER: "NHẮC LẠI {reminder}: {type} {ward_short}, {room}, {time}. "
                           "Đáp: OK {code}",
        TextKind.MASS: "{count} BÁO ĐỘNG {site_short}. {rooms}. {time}. Đáp: OK {code}",
        TextKind.CONFIRMATION: "Đã nhận OK {code}: {ward_short}, {room}",
        TextKind.NO_MATCH: "Không có báo động mở mã {code}. Đang mở: {open_codes}",
        TextKind.NOT_UNDERSTOOD: "Không hiểu tin nhắn. Để xác nhận, đáp: OK <mã 4 số>",
    },
    "en": {
        TextKind.ALARM: "{type} {site_short}, {ward_short}, {room}, {time}. Reply: OK {code}",
        TextKind.DRILL: "{site_short}, {ward_short}, {room}, {time}. Reply: OK {code}",
        TextKind.REMINDER: "REMINDER {reminder}: {type} {ward_short}, {room}, {time}. "
                           "Reply: OK {code}",
        TextKind.MASS: "{count} ALARMS {site_short}. {rooms}. {time}. Reply: OK {code}",
        TextKind.CONFIRMATION: "Received OK {code}: {ward_short}, {room}",
        TextKind.NO_MATCH: "No open alarm has code {code}. Open: {open_codes}",
        TextKind.NOT_UNDERSTOOD: "Not understood. To acknowledge, reply: OK <4-digit code>",
    },
}  # fmt: skip

REQUIRED: dict[TextKind, tuple[str, ...]] = {
    TextKind.ALARM: ("code",), TextKind.DRILL: ("code",), TextKind.REMINDER: ("code",),
    TextKind.MASS: ("code",), TextKind.CONFIRMATION: ("code",),
    TextKind.NO_MATCH: (), TextKind.NOT_UNDERSTOOD: (),
}  # fmt: skip
"""Fields a site's template must keep: the police acknowledge with the code."""

REMINDER_MARK = {"vi": "NHẮC LẠI", "en": "REMINDER"}
MASS_CONFIRMATION = {"vi": "Đã nhận OK {code}: {rooms}", "en": "Received OK {code}: {rooms}"}
"""A mass alarm's confirmation: every room it acknowledged (more rooms may take more parts)."""


@dataclass(frozen=True, slots=True)
class SmsTexts:
    """A site's SMS texts: ``language``, ``charset`` (``ucs2`` keeps diacritics, ``gsm7``
    sends them plain), ``max_parts`` an alarm text may take, the time zone, and the
    site's own templates by kind (the defaults fill the rest)."""

    language: str = "vi"
    charset: str = "ucs2"
    max_parts: int = 1
    timezone: str = DEFAULT_TZ
    custom: dict[TextKind, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any) -> SmsTexts:
        """From a ``SiteConfig``'s ``[messages]`` and ``[site] timezone``."""
        m = config.messages
        custom = {TextKind(k): v for k, v in (m.templates or {}).items() if v}
        alarm = (m.sms_en if m.language == "en" else None) or m.sms
        if alarm:
            custom[TextKind.ALARM] = alarm
            if TextKind.DRILL not in custom:
                custom[TextKind.DRILL] = alarm  # the site's own wording, drills included
        return cls(m.language, m.charset, m.max_parts, config.site.timezone, custom)

    @property
    def lang(self) -> str:
        return "en" if self.language == "en" else "vi"

    def template(self, kind: TextKind) -> str:
        return self.custom.get(kind) or DEFAULTS[self.lang][kind]

    def render(self, kind: TextKind, facts: AlarmFacts) -> str:
        """The text of ``kind`` for ``facts`` as the phone will show it: drills prefixed,
        plain when the charset is ``gsm7``. A broken site template (check-config refuses
        those) falls back to the default: an alarm text is never lost to a typo."""
        template = self.template(kind)
        if kind == TextKind.CONFIRMATION and len(facts.members) > 1:
            template = MASS_CONFIRMATION[self.lang]
        try:
            text = render(template, facts, self.lang, self.timezone)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            log.warning("event=sms_template_unusable kind=%s error=%r", kind, str(exc))
            text = render(DEFAULTS[self.lang][kind], facts, self.lang, self.timezone)
        if facts.drill and kind in (TextKind.ALARM, TextKind.DRILL, TextKind.REMINDER,
                                    TextKind.MASS, TextKind.CONFIRMATION):
            text = f"{DRILL_PREFIX[self.lang]} {text}"
        return plain_text(text) if self.charset == "gsm7" else text

    def alarm(self, facts: AlarmFacts, *, reminder: int = 0) -> str:
        """The text for one round to one number: ``reminder`` > 0 for a number that had
        this alarm already (``NHẮC LẠI <n>``); a drill or mass alarm has its own form."""
        if facts.drill:
            text = self.render(TextKind.DRILL, facts)
            return f"{self.reminder_mark(reminder)} {text}" if reminder > 0 else text
        if facts.members[1:]:
            text = self.render(TextKind.MASS, facts)
            return f"{self.reminder_mark(reminder)} {text}" if reminder > 0 else text
        if reminder > 0:
            return self.render(TextKind.REMINDER, replace(facts, reminder=reminder))
        return self.render(TextKind.ALARM, facts)

    def reminder_mark(self, n: int) -> str:
        """``NHẮC LẠI <n>:`` (plain under ``gsm7``), put before a mass alarm's reminder."""
        mark = f"{REMINDER_MARK[self.lang]} {n}:"
        return plain_text(mark) if self.charset == "gsm7" else mark

    def resend(self, text: str, attempt: int) -> str:
        """``text`` for send attempt ``attempt`` (1-based): from the second on, `` (n)``
        is appended where it takes no more parts, so repeats never read identically."""
        if attempt <= 1:
            return text
        marked = f"{text} ({attempt})"
        return marked if shape(marked).parts <= shape(text).parts else text
