"""The texts the police and the security desk read, and the police's replies (SPEC §4).

Texts come from ``str.format``-style templates with named fields (:data:`FIELDS`), one per
language; sites may override them in ``[messages]``. The default Vietnamese SMS fits in
three UCS2 parts (67 characters each) for a realistic hospital name. Every SMS ends with a
short reference unique to the escalation, so an operator's anti-spam filter (identical
texts repeated within minutes) never holds back an alarm. Replies are matched folded:
case-folded, combining marks dropped, ``đ`` read as ``d``.
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
UCS2_PART_CHARS = 67  # characters per part of a concatenated UCS2 SMS
MAX_TEMPLATE_PARTS = 6  # a template rendering longer than this many parts is refused
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
DRILL_PREFIX = {"vi": "[DIỄN TẬP]", "en": "[DRILL]"}

FIELDS = {
    "type": "the alarm type's name, e.g. Báo động khẩn cấp",
    "site": "the hospital's name",
    "address": "the hospital's address",
    "phone": "the security desk's phone number",
    "ward": "the ward's name",
    "room": "the room as configured",
    "device": "the device id",
    "time": "local time the alarm was raised, HH:MM:SS DD/MM/YYYY",
    "code": "the alarm's 4-digit code",
    "ref": "a short reference unique to this escalation",
    "presses": "how many times the button was pressed",
}

DEFAULT_TEMPLATES = {
    "vi": "{type}: {site}, {ward}, phòng {room}, {time}. Mã {code}. Trả lời: OK {code} #{ref}",
    "en": "{type}: {site}, {ward}, room {room}, {time}. Code {code}. Reply: OK {code} #{ref}",
}


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    """What a message names. ``raised_at`` is unix seconds or an RFC 3339 string."""

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


@dataclass(frozen=True, slots=True)
class Templates:
    """The site's templates (None: the default) and primary ``language`` (``vi``/``en``)."""

    vi: str | None = None
    en: str | None = None
    language: str = "vi"
    timezone: str = DEFAULT_TZ

    @classmethod
    def from_config(cls, messages: Any, timezone: str = DEFAULT_TZ) -> Templates:
        """From ``[messages]`` (``gateway.config.schema.Messages``) and the site's time zone."""
        return cls(vi=messages.sms, en=messages.sms_en, language=messages.language,
                   timezone=timezone)

    def render(self, facts: AlarmFacts, language: str | None = None) -> str:
        """The text in ``language`` (default: the primary one)."""
        lang = "en" if (language or self.language) == "en" else "vi"
        custom = self.vi if lang == "vi" else self.en
        return render(custom or DEFAULT_TEMPLATES[lang], facts, lang, self.timezone)

    def http_messages(self, facts: AlarmFacts) -> tuple[str, str]:
        """``(message, message_en)`` for the HTTP body: primary language, then English."""
        return self.render(facts), self.render(facts, "en")


def type_name(alarm_type: str, language: str = "vi") -> str:
    """The alarm type's display name; an unknown type is shown as-is, labelled."""
    names = ALARM_TYPES["en" if language == "en" else "vi"]
    if alarm_type in names:
        return names[alarm_type]
    return f"{'Alarm' if language == 'en' else 'Báo động'} ({alarm_type})"


@lru_cache(maxsize=8)
def _zone(name: str) -> timezone | ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r unknown: using UTC+07:00", name)
        return timezone(timedelta(hours=7), "+07")


def local_time(when: float | str, tz: str = DEFAULT_TZ) -> str:
    """``HH:MM:SS DD/MM/YYYY`` in ``tz``; ``when`` is unix seconds or RFC 3339."""
    seconds = parse_rfc3339(when) if isinstance(when, str) else when
    return datetime.fromtimestamp(seconds, tz=_zone(tz)).strftime("%H:%M:%S %d/%m/%Y")


def sms_reference(escalation_id: str, attempt: int = 1) -> str:
    """Six characters derived from the escalation (``-2``… appended on a resend), so each
    SMS differs from the last even when everything else is identical."""
    digest = hashlib.sha256(escalation_id.encode("utf-8")).digest()
    ref = base64.b32encode(digest).decode("ascii")[:6]
    return ref if attempt <= 1 else f"{ref}-{attempt}"


class _SafeFormatter(string.Formatter):
    """Plain named fields only: no attribute or index access, no positional fields."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if field_name not in FIELDS:
            raise KeyError(field_name)
        return kwargs[field_name], field_name


_FORMATTER = _SafeFormatter()


def _values(facts: AlarmFacts, language: str, tz: str) -> dict[str, str]:
    return {
        "type": type_name(facts.type, language),
        "site": facts.site,
        "address": facts.address,
        "phone": facts.phone,
        "ward": facts.ward,
        "room": facts.room or "-",
        "device": facts.device or "-",
        "time": local_time(facts.raised_at, tz),
        "code": facts.code,
        "ref": facts.ref,
        "presses": str(facts.press_count),
    }


def render(template: str, facts: AlarmFacts, language: str = "vi", tz: str = DEFAULT_TZ) -> str:
    """Fill ``template``; a broken one falls back to the default (an alarm text is never
    lost to a typo). Drills get the drill prefix, and a ``ref`` the template leaves out
    is appended."""
    lang = "en" if language == "en" else "vi"
    values = _values(facts, lang, tz)
    try:
        text = _FORMATTER.vformat(template, (), values)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.warning("message template unusable (%s): using the default", exc)
        template = DEFAULT_TEMPLATES[lang]
        text = _FORMATTER.vformat(template, (), values)
    if facts.ref and "ref" not in _field_names(template):
        text = f"{text} #{facts.ref}"
    return f"{DRILL_PREFIX[lang]} {text}" if facts.drill else text


def _field_names(template: str) -> set[str]:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        return set()


_SAMPLE = AlarmFacts(
    type="duress", site="Bệnh viện Đa khoa tỉnh Quảng Ninh", ward="Khoa Cấp cứu", room="105",
    code="0427", raised_at=1_795_000_000.0, drill=True, device="btn-105", press_count=2,
    address="651 Lê Thánh Tông, Hạ Long", phone="+842033825499", ref="7F3A2C",
)


def check_template(template: str) -> list[str]:
    """Problems with a ``[messages]`` template, one readable line each (empty: usable).

    Reports bad syntax, unknown, positional or nested fields, conversions, a missing
    ``{code}`` (the police acknowledge with it) and a text too long for an SMS.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"bad template syntax: {exc}"]
    problems = [p for _, name, spec, conv in parsed if name is not None
                for p in _field_problems(name, spec or "", conv)]
    if "code" not in {name for _, name, _, _ in parsed}:
        problems.append("must contain {code}: the police acknowledge with it")
    if problems:
        return problems
    try:
        text = render_strict(template, _SAMPLE)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return [f"cannot be filled in: {exc}"]
    if len(text) > MAX_TEMPLATE_PARTS * UCS2_PART_CHARS:
        problems.append(f"renders to {len(text)} characters for a sample alarm: longer than "
                        f"{MAX_TEMPLATE_PARTS} SMS parts of {UCS2_PART_CHARS}")
    return problems


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


def render_strict(template: str, facts: AlarmFacts, language: str = "vi") -> str:
    """Like :func:`render` but raising on a broken template (for checks and previews)."""
    return _FORMATTER.vformat(template, (), _values(facts, language, DEFAULT_TZ))


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
