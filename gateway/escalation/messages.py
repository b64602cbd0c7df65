"""What every police text is made of, the long texts of the HTTP body, and police replies.

Texts come from ``str.format``-style templates with named fields (:data:`FIELDS`): plain
names only, no attribute or index access. This module holds the facts an alarm text names
(:class:`AlarmFacts`), the field values (short and long names, short and long time), the
long texts of the HTTP body (``message``, ``message_en``: no length limit there) and the
matching of police replies (case-folded, combining marks dropped, ``đ`` read as ``d``).
The SMS texts, which must fit one part, are :mod:`gateway.escalation.sms_texts`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.clock import parse_rfc3339

log = logging.getLogger(__name__)

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
MAX_REPLY_CHARS = 1000  # longer replies are cut before matching

ALARM_TYPES = {
    "vi": {
        "panic": "Báo động khẩn cấp",
        "duress": "Báo động cưỡng ép (bị khống chế)",
        "intrusion": "Báo động đột nhập",
        "door": "Báo động cửa mở",
        "tamper": "Báo động phá thiết bị",
        "test": "Kiểm tra định kỳ",
    },
    "en": {
        "panic": "Panic alarm",
        "duress": "Duress alarm (staff under threat)",
        "intrusion": "Intrusion alarm",
        "door": "Door alarm",
        "tamper": "Tamper alarm",
        "test": "Periodic test",
    },
}
SHORT_TYPES = {
    "vi": {"panic": "KHẨN CẤP", "duress": "CƯỠNG ÉP", "intrusion": "ĐỘT NHẬP",
           "door": "CỬA MỞ", "tamper": "PHÁ THIẾT BỊ", "test": "KIỂM TRA"},
    "en": {"panic": "PANIC", "duress": "DURESS", "intrusion": "INTRUSION", "door": "DOOR",
           "tamper": "TAMPER", "test": "TEST"},
}
"""The type as an SMS names it: a word or two, in capitals, so it stands out."""
DRILL_PREFIX = {"vi": "[DIỄN TẬP]", "en": "[DRILL]"}

FIELDS = {
    "type": "the alarm type, short: KHẨN CẤP, CƯỠNG ÉP …",
    "type_long": "the alarm type, long: Báo động khẩn cấp …",
    "site_short": "the hospital's short name ([site] short_name; its name if unset)",
    "site": "the hospital's name",
    "address": "the hospital's address",
    "phone": "the security desk's phone number",
    "ward_short": "the ward's short name ([[wards]] short_name; its name if unset)",
    "ward": "the ward's name",
    "room": "the room as configured, as written",
    "device": "the device id",
    "time": "local time the alarm was raised, HH:MM",
    "time_long": "local time the alarm was raised, HH:MM:SS DD/MM/YYYY",
    "date": "local date the alarm was raised, DD/MM",
    "code": "the alarm's 4-digit code",
    "ref": "a short reference unique to this escalation (6 characters)",
    "presses": "how many times the button was pressed",
    "count": "how many alarms a mass alarm groups",
    "rooms": "a mass alarm's rooms, by ward: Cấp cứu: P.102, P.104; Khám bệnh: P.3",
    "reminder": "which reminder this is: 1, 2 …",
    "open_codes": "the codes of the open alarms (explanation texts)",
}

DEFAULT_TEMPLATES = {
    "vi": "{type_long}: {site}, {ward}, {room}, {time_long}. Mã {code}. Trả lời: OK {code}",
    "en": "{type_long}: {site}, {ward}, {room}, {time_long}. Code {code}. Reply: OK {code}",
}
"""The long texts of the HTTP body (``message``, ``message_en``)."""


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    """What a message names. ``raised_at`` is unix seconds or an RFC 3339 string; empty
    short names fall back to the long ones; ``members`` is a mass alarm's
    ``(ward_short, room)`` pairs, in the order raised."""

    type: str
    site: str
    ward: str
    room: str | None
    code: str
    raised_at: float | str
    drill: bool = False
    device: str | None = None
    press_count: int = 1
    address: str = ""
    phone: str = ""
    ref: str = ""
    site_short: str = ""
    ward_short: str = ""
    members: tuple[tuple[str, str], ...] = ()
    reminder: int = 0
    open_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Templates:
    """The long texts of the HTTP body in the primary ``language`` (``vi``/``en``) and in
    English, in the site's time zone."""

    language: str = "vi"
    timezone: str = DEFAULT_TZ

    @classmethod
    def from_config(cls, messages: Any, timezone: str = DEFAULT_TZ) -> Templates:
        """From ``[messages]`` (``gateway.config.Messages``) and the site's time zone."""
        return cls(language=messages.language, timezone=timezone)

    def render(self, facts: AlarmFacts, language: str | None = None) -> str:
        """The long text in ``language`` (default: the primary one), drills prefixed."""
        lang = "en" if (language or self.language) == "en" else "vi"
        text = render(DEFAULT_TEMPLATES[lang], facts, lang, self.timezone)
        return f"{DRILL_PREFIX[lang]} {text}" if facts.drill else text

    def http_messages(self, facts: AlarmFacts) -> tuple[str, str]:
        """``(message, message_en)`` for the HTTP body: primary language, then English."""
        return self.render(facts), self.render(facts, "en")


def type_name(alarm_type: str, language: str = "vi", *, short: bool = False) -> str:
    """The alarm type's display name; an unknown type is shown as-is, labelled."""
    lang = "en" if language == "en" else "vi"
    names = (SHORT_TYPES if short else ALARM_TYPES)[lang]
    if alarm_type in names:
        return names[alarm_type]
    label = "Alarm" if lang == "en" else "Báo động"
    return f"{label.upper() if short else label} ({alarm_type})"


@lru_cache(maxsize=8)
def _zone(name: str) -> timezone | ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r unknown: using UTC+07:00", name)
        return timezone(timedelta(hours=7), "+07")


def local_time(when: float | str, tz: str = DEFAULT_TZ, fmt: str = "%H:%M:%S %d/%m/%Y") -> str:
    """``when`` (unix seconds or RFC 3339) in ``tz``, as ``fmt`` (default
    ``HH:MM:SS DD/MM/YYYY``)."""
    seconds = parse_rfc3339(when) if isinstance(when, str) else when
    return datetime.fromtimestamp(seconds, tz=_zone(tz)).strftime(fmt)


def sms_reference(escalation_id: str, attempt: int = 1) -> str:
    """Six characters derived from the escalation (``-2``… appended on a resend): the
    ``{ref}`` field, for sites whose texts must carry one."""
    digest = hashlib.sha256(escalation_id.encode("utf-8")).digest()
    ref = base64.b32encode(digest).decode("ascii")[:6]
    return ref if attempt <= 1 else f"{ref}-{attempt}"


class _SafeFormatter(string.Formatter):
    """Plain named fields only: no attribute or index access, no positional fields."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if field_name not in FIELDS:
            raise KeyError(field_name)
        return kwargs[field_name], field_name


FORMATTER = _SafeFormatter()


def rooms_text(members: tuple[tuple[str, str], ...]) -> str:
    """A mass alarm's rooms, compact, by ward in first-raised order, each room once:
    ``Cấp cứu: P.102, P.104; Khám bệnh: P.3``."""
    by_ward: dict[str, list[str]] = {}
    for ward, room in members:
        rooms = by_ward.setdefault(ward, [])
        if room not in rooms:
            rooms.append(room)
    return "; ".join(f"{ward}: {', '.join(rooms)}" for ward, rooms in by_ward.items())


def values(facts: AlarmFacts, language: str, tz: str) -> dict[str, str]:
    """Every field's value for ``facts`` (:data:`FIELDS`)."""
    members = facts.members or ((facts.ward_short or facts.ward, facts.room or "-"),)
    return {
        "type": type_name(facts.type, language, short=True),
        "type_long": type_name(facts.type, language),
        "site_short": facts.site_short or facts.site,
        "site": facts.site,
        "address": facts.address,
        "phone": facts.phone,
        "ward_short": facts.ward_short or facts.ward,
        "ward": facts.ward,
        "room": facts.room or "-",
        "device": facts.device or "-",
        "time": local_time(facts.raised_at, tz, "%H:%M"),
        "time_long": local_time(facts.raised_at, tz),
        "date": local_time(facts.raised_at, tz, "%d/%m"),
        "code": facts.code,
        "ref": facts.ref,
        "presses": str(facts.press_count),
        "count": str(len(facts.members) or 1),
        "rooms": rooms_text(members),
        "reminder": str(facts.reminder),
        "open_codes": ", ".join(facts.open_codes) or "-",
    }


def render(template: str, facts: AlarmFacts, language: str = "vi", tz: str = DEFAULT_TZ) -> str:
    """Fill ``template`` (no drill prefix: the caller adds it). Raises ``ValueError``,
    ``KeyError`` … on a broken template: :func:`check_template` finds those first."""
    return FORMATTER.vformat(template, (), values(facts, "en" if language == "en" else "vi", tz))


def check_template(template: str, required: tuple[str, ...] = ("code",)) -> list[str]:
    """Problems with a template, one readable line each (empty: usable): bad syntax,
    unknown, positional or nested fields, conversions, a missing required field (the
    police acknowledge with ``{code}``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"bad template syntax: {exc}"]
    problems = [p for _, name, spec, conv in parsed if name is not None
                for p in _field_problems(name, spec or "", conv)]
    names = {name for _, name, _, _ in parsed}
    problems += [f"must contain {{{f}}}: the police acknowledge with it" if f == "code"
                 else f"must contain {{{f}}}" for f in required if f not in names]
    if problems:
        return problems
    try:
        render(template, _SAMPLE)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return [f"cannot be filled in: {exc}"]
    return []


def _field_problems(name: str, spec: str, conv: str | None) -> list[str]:
    known = ", ".join("{" + f + "}" for f in FIELDS)
    if name == "" or name.isdigit():
        return [f"positional field {{{name}}} is not allowed: use a name ({known})"]
    out = [] if name in FIELDS else [f"unknown field {{{name}}}: known fields are {known}"]
    if "{" in spec or "}" in spec:
        out.append(f"nested field in the format of {{{name}}} is not allowed")
    if conv is not None:
        out.append(f"conversion !{conv} in {{{name}}} is not allowed")
    return out


_SAMPLE = AlarmFacts(
    type="duress", site="Bệnh viện Đa khoa tỉnh Quảng Ninh", ward="Khoa Cấp cứu", room="105",
    code="0427", raised_at=1_795_000_000.0, drill=True, device="btn-105", press_count=2,
    address="651 Lê Thánh Tông, Hạ Long", phone="+842033825499", ref="7F3A2C",
)


_REPLY = re.compile(r"[^a-z0-9]*ok(?![a-z])[^a-z0-9]*([0-9]{4})(?![0-9])")


def _fold_once(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return kept.casefold().replace("đ", "d")


def fold_reply(text: str) -> str:
    """Case-folded, combining marks dropped, ``đ`` → ``d``, whitespace collapsed.

    NFKD rather than NFD so full-width digits and letters from some phone keyboards fold
    to ASCII too. ``"ÔK  0427"`` → ``"ok 0427"``.
    """
    folded = text[:MAX_REPLY_CHARS]
    for _ in range(4):  # casefold can expose new marks (e.g. "İ"): fold to a fixed point
        again = _fold_once(folded)
        if again == folded:
            break
        folded = again
    return " ".join(folded.split())


def parse_police_reply(text: str) -> str | None:
    """The 4-digit code of an ``OK <code>`` reply, or None for anything else.

    The reply must start with ``OK`` (punctuation around it is tolerated, e.g.
    ``"Ok, 0427."``) and the code must be exactly four digits; words may follow.
    """
    match = _REPLY.match(fold_reply(text))
    return match.group(1) if match else None
