"""How a text travels as SMS (3GPP TS 23.038 / 23.040): its alphabet and its parts.

Stdlib only, shared by the PDU coder (:mod:`drivers.pdu`, which sends the parts) and the
message templates (which must know, before anything is sent, how many parts an alarm text
costs: ``check-config`` refuses one that needs more than the site allows).

A text goes as GSM 7-bit when every character is in the default alphabet or its extension
table (those cost two septets), else as UCS2 (UTF-16 code units; a character outside the
BMP costs two). One part holds 160 septets or 70 units; a longer text is cut into parts of
153 / 67 (the concatenation header takes 6 octets), never inside an escape or a surrogate
pair. Vietnamese with any diacritic is UCS2: :func:`plain_text` gives the text without
diacritics that a site may choose to send in GSM 7-bit.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

Alphabet = Literal["gsm7", "8bit", "ucs2"]

GSM_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, indexed by septet; ``0x1B`` is the escape, not a char."""

GSM_EXTENSION: Final = {
    0x0A: "\x0c", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}  # fmt: skip
"""Characters reached through the escape ``0x1B``; each costs two septets."""

ESC: Final = 0x1B
TO_BASIC: Final = {ch: i for i, ch in enumerate(GSM_BASIC) if i != ESC}
TO_EXT: Final = {ch: code for code, ch in GSM_EXTENSION.items()}

SINGLE_LIMIT: Final = {"gsm7": 160, "ucs2": 70}
"""Units in a message sent as one part: septets (GSM 7-bit) or UTF-16 code units (UCS2)."""
PART_LIMIT: Final = {"gsm7": 153, "ucs2": 67}
"""Units per part of a concatenated message (6 header octets taken from 140)."""

_PLAIN: Final = {"đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "ø": "o",
                 "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "..."}


@dataclass(frozen=True, slots=True)
class SmsShape:
    """What a text costs: its ``alphabet``, ``units`` (septets or UTF-16 code units),
    ``parts`` (SMS sent), and ``limit``: the units one part of this alphabet holds alone."""

    alphabet: Alphabet
    units: int
    parts: int

    @property
    def limit(self) -> int:
        return SINGLE_LIMIT["gsm7" if self.alphabet == "gsm7" else "ucs2"]

    def describe(self) -> str:
        """``1 SMS, 63/70 UCS2`` — for people reading ``check-config``."""
        name = "GSM 7-bit" if self.alphabet == "gsm7" else "UCS2"
        if self.parts == 1:
            return f"1 SMS, {self.units}/{self.limit} {name}"
        return f"{self.parts} SMS, {self.units} {name} units"


def gsm_septets(text: str) -> list[int] | None:
    """The septets for ``text`` in the default alphabet, or None if a character is missing."""
    out: list[int] = []
    for ch in text:
        if ch in TO_BASIC:
            out.append(TO_BASIC[ch])
        elif ch in TO_EXT:
            out += (ESC, TO_EXT[ch])
        else:
            return None
    return out


def _costs(text: str) -> tuple[Alphabet, list[int]]:
    septets = [gsm_septets(ch) for ch in text]
    if all(s is not None for s in septets):
        return "gsm7", [len(s or ()) for s in septets]
    return "ucs2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def split_text(text: str) -> tuple[Alphabet, list[str]]:
    """Choose the alphabet for ``text`` (NFC) and cut it into parts (one part if it fits)."""
    alphabet, costs = _costs(text)
    if sum(costs) <= SINGLE_LIMIT[alphabet]:
        return alphabet, [text]
    parts: list[str] = []
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if used + cost > PART_LIMIT[alphabet]:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return alphabet, parts


def shape(text: str) -> SmsShape:
    """The alphabet, units and number of parts ``text`` takes once NFC-normalised, exactly
    as :func:`drivers.pdu.encode_submit` will send it."""
    text = unicodedata.normalize("NFC", text)
    alphabet, costs = _costs(text)
    units = sum(costs)
    if units <= SINGLE_LIMIT[alphabet]:
        return SmsShape(alphabet, units, 1)
    return SmsShape(alphabet, units, len(split_text(text)[1]))


def plain_text(text: str) -> str:
    """``text`` without diacritics, in the GSM 7-bit alphabet: ``"KHẨN CẤP Giường 11"`` →
    ``"KHAN CAP Giuong 11"``. ``đ`` becomes ``d``; a character with no plain form becomes
    ``?`` (a phone shows GSM 7-bit texts the same everywhere)."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if (ch in TO_BASIC and ch.isascii()) or ch in TO_EXT:
            out.append(ch)
            continue
        ch = _PLAIN.get(ch, ch)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch)
                       if unicodedata.category(c) != "Mn")
        out.append(base if base and gsm_septets(base) is not None else "?")
    return "".join(out)
