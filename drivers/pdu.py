"""SMS PDU coding (3GPP TS 23.040 / 23.038), sans-I/O: text in, hex PDUs out, and back.

The coder is ours rather than a library's: ``python-gsmmodem-new`` has had no release since
2021, maps GSM 7-bit ``0x5F`` to a backtick instead of ``§`` and (in its modem layer) loses a
``+CMTI`` that arrives while a command is pending; ``smspdudecoder`` only decodes. Both
directions are needed here: the driver encodes SMS-SUBMIT and decodes SMS-DELIVER, the
simulator does the opposite, and the same functions serve both so a test reads exactly what
a police phone would show.

Text is NFC-normalised first (decomposed Vietnamese would double the UCS2 count). It is sent
in the GSM 7-bit default alphabet (plus the extension table) when every character fits,
else in UCS2 (UTF-16BE; a character outside the BMP counts two). A text longer than one part
(160 septets / 70 UCS2 units) is split into parts of 153 / 67 with the concatenation header
``05 00 03 <ref> <total> <seq>``; a split never falls inside an escape sequence or a
surrogate pair. See ``docs/sms.md``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, Literal

from gateway.core.errors import GatewayError
from gateway.core.smstext import (
    ESC,
    GSM_BASIC,
    GSM_EXTENSION,
    PART_LIMIT,
    SINGLE_LIMIT,
    Alphabet,
    gsm_septets,
    split_text,
)

__all__ = ["ESC", "GSM_BASIC", "GSM_EXTENSION", "PART_LIMIT", "SINGLE_LIMIT", "Alphabet",
           "Assembled", "Concat", "PduError", "Reassembler", "Sms", "SubmitPdu",
           "decode_deliver", "decode_submit", "encode_deliver", "encode_submit",
           "gsm_septets", "gsm_text", "normalize_number", "pack_septets", "split_text",
           "unpack_septets"]

MAX_PARTS: Final = 255
VALIDITY_ONE_DAY: Final = 0xA7
"""TP-VP, relative format: 167 means 24 hours (TS 23.040 §9.2.3.12.1)."""

_DCS: Final = {"gsm7": 0x00, "8bit": 0x04, "ucs2": 0x08}
_BCD_DIGITS: Final = "0123456789*#abc"
_SEPARATORS = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"[0-9]{1,20}")


class PduError(GatewayError, ValueError):
    """A PDU, text or number that cannot be coded: malformed, truncated or too long."""


@dataclass(frozen=True, slots=True)
class Concat:
    """The concatenation header: one 8- or 16-bit ``ref`` shared by ``total`` parts."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class SubmitPdu:
    """One SMS-SUBMIT ready for ``AT+CMGS=<tpdu_length>``; ``hex`` starts with ``00`` (the
    modem's default SMSC), which ``tpdu_length`` does not count."""

    hex: str
    tpdu_length: int
    seq: int
    total: int


@dataclass(frozen=True, slots=True)
class Sms:
    """A decoded SMS-DELIVER (``number`` = sender) or SMS-SUBMIT (``number`` = recipient).

    ``payload`` is the user data after its header, as septets for GSM 7-bit, so parts can be
    joined before decoding (an escape or surrogate pair split by another phone survives).
    """

    kind: Literal["deliver", "submit"]
    number: str
    text: str
    alphabet: Alphabet
    payload: bytes
    concat: Concat | None
    smsc: str | None
    sent_at: datetime | None
    message_ref: int | None
    tpdu_length: int
    status_report: bool
    numeric: bool = True  # the address's type is a phone number's (see numeric_address)


# -- numbers ---------------------------------------------------------------------------


def normalize_number(raw: str, country_code: str = "84") -> str:
    """E.164 for a phone number as people write it: spaces, dashes, dots and brackets go, a
    leading ``00`` becomes ``+`` and a leading ``0`` becomes ``+<country_code>`` (Vietnam:
    ``0912 345 678`` → ``+84912345678``). Anything else (short codes like ``113``) is kept
    as its digits."""
    s = _SEPARATORS.sub("", raw)
    if s.startswith("+"):
        digits, intl = s[1:], True
    elif s.startswith("00"):
        digits, intl = s[2:], True
    elif s.startswith("0"):
        digits, intl = country_code + s[1:], True
    else:
        digits, intl = s, False
    if not _DIGITS.fullmatch(digits):
        raise PduError(f"not a phone number: {raw!r}")
    return ("+" if intl else "") + digits


def _encode_address(number: str) -> bytes:
    """TP-DA: digit count, type (0x91 international, 0x81 unknown) and swapped BCD."""
    intl = number.startswith("+")
    digits = number[1:] if intl else number
    if not _DIGITS.fullmatch(digits):
        raise PduError(f"not a phone number: {number!r}")
    return bytes([len(digits), 0x91 if intl else 0x81]) + _swap_bcd(digits)


def _swap_bcd(digits: str) -> bytes:
    padded = digits + "F" * (len(digits) % 2)
    return bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))


def _bcd_digits(raw: bytes, count: int) -> str:
    nibbles = [n for b in raw for n in (b & 0x0F, b >> 4)][:count]
    return "".join(_BCD_DIGITS[n] for n in nibbles if n < 0x0F)


# -- GSM 7-bit ---------------------------------------------------------------------------


def gsm_text(septets: Sequence[int]) -> str:
    """Decode septets; an unknown escape shows its basic character (TS 23.038 §6.2.1.1)."""
    out: list[str] = []
    it = iter(septets)
    for s in it:
        if s != ESC:
            out.append(GSM_BASIC[s & 0x7F])
            continue
        nxt = next(it, None)
        if nxt is None or nxt == ESC:
            out.append(" ")
        else:
            out.append(GSM_EXTENSION.get(nxt, GSM_BASIC[nxt & 0x7F]))
    return "".join(out)


def pack_septets(septets: Sequence[int], fill_bits: int = 0) -> bytes:
    """Pack septets LSB first, after ``fill_bits`` zero bits (to align after a UDH)."""
    acc, nbits, out = 0, fill_bits, bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """The first ``count`` septets of ``data`` after ``fill_bits`` bits."""
    if fill_bits + 7 * count > 8 * len(data):
        raise PduError("user data shorter than its length")
    value = int.from_bytes(data, "little") >> fill_bits
    return [(value >> (7 * i)) & 0x7F for i in range(count)]


# -- encoding ----------------------------------------------------------------------------


def encode_submit(
    number: str,
    text: str,
    *,
    ref: int = 0,
    validity: int = VALIDITY_ONE_DAY,
    status_report: bool = False,
) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for ``text`` to ``number`` (``+84…`` is sent as international).

    ``ref`` (0-255) ties the parts of one concatenated message together; use a new one per
    message. ``validity`` is the relative TP-VP octet (default 24 h).
    """
    text = unicodedata.normalize("NFC", text)
    address = _encode_address(number)
    alphabet, parts = split_text(text)
    total = len(parts)
    if total > MAX_PARTS:
        raise PduError(f"text needs {total} parts, more than {MAX_PARTS}")
    first = 0x11 | (0x20 if status_report else 0) | (0x40 if total > 1 else 0)
    head = bytes([first, 0x00]) + address + bytes([0x00, _DCS[alphabet], validity & 0xFF])
    pdus = []
    for seq, part in enumerate(parts, start=1):
        udh = bytes([5, 0, 3, ref & 0xFF, total, seq]) if total > 1 else b""
        tpdu = head + _user_data(alphabet, part, udh)
        pdus.append(SubmitPdu("00" + tpdu.hex().upper(), len(tpdu), seq, total))
    return pdus


def _user_data(alphabet: Alphabet, text: str, udh: bytes) -> bytes:
    """TP-UDL followed by TP-UD (header, fill bits, text)."""
    if alphabet == "gsm7":
        septets = gsm_septets(text) or []
        header_septets = (len(udh) * 8 + 6) // 7
        fill = header_septets * 7 - len(udh) * 8
        body = pack_septets(septets, fill)
        return bytes([header_septets + len(septets)]) + udh + body
    body = text.encode("utf-16-be")
    return bytes([len(udh) + len(body)]) + udh + body


def encode_deliver(
    sender: str, text: str, *, smsc: str, sent_at: datetime, ref: int = 0,
    alphanumeric: bool = False,
) -> list[str]:
    """SMS-DELIVER PDUs with the SMSC prefix, as ``AT+CMGR`` shows them (for the simulator).

    ``sender`` is a number (``+84…`` international) or an alphanumeric name such as
    ``Viettel`` (at most 11 GSM characters); ``alphanumeric`` sends even a name made of
    digits as an alphanumeric address (type 0xD0), as a spoofing sender can.
    """
    text = unicodedata.normalize("NFC", text)
    alphabet, parts = split_text(text)
    if len(parts) > MAX_PARTS:
        raise PduError(f"text needs {len(parts)} parts, more than {MAX_PARTS}")
    sca = _encode_address(smsc)[1:]
    prefix = bytes([len(sca)]) + sca
    out = []
    for seq, part in enumerate(parts, start=1):
        udh = bytes([5, 0, 3, ref & 0xFF, len(parts), seq]) if len(parts) > 1 else b""
        first = 0x04 | (0x40 if udh else 0)
        tpdu = bytes([first]) + _sender_address(sender, alphanumeric=alphanumeric)
        tpdu += bytes([0x00, _DCS[alphabet]])
        tpdu += _encode_scts(sent_at) + _user_data(alphabet, part, udh)
        out.append((prefix + tpdu).hex().upper())
    return out


def _sender_address(sender: str, *, alphanumeric: bool = False) -> bytes:
    if not alphanumeric and _DIGITS.fullmatch(sender.lstrip("+")):
        return _encode_address(sender)
    septets = gsm_septets(sender)
    if septets is None or len(septets) > 11:
        raise PduError(f"not a sender address: {sender!r}")
    packed = pack_septets(septets)
    return bytes([(len(septets) * 7 + 3) // 4, 0xD0]) + packed


def _encode_scts(when: datetime) -> bytes:
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    fields = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    octets = [((v % 10) << 4) | (v // 10) for v in fields]
    q = abs(quarters)
    octets.append(((q % 10) << 4) | (q // 10) | (0x08 if quarters < 0 else 0))
    return bytes(octets)


# -- decoding ----------------------------------------------------------------------------


class _Reader:
    """Octets consumed in order; running short is a :class:`PduError`."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError("PDU truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def done(self) -> None:
        if self.pos != len(self.data):
            raise PduError(f"{len(self.data) - self.pos} octets after the user data")


def _from_hex(pdu: str) -> bytes:
    try:
        return bytes.fromhex(pdu.strip())
    except ValueError as exc:
        raise PduError("PDU is not hex") from exc


def decode_deliver(pdu: str) -> Sms:
    """An SMS-DELIVER as ``AT+CMGR`` / ``+CMT`` give it in PDU mode (SMSC part first)."""
    r = _Reader(_from_hex(pdu))
    smsc = _decode_smsc(r)
    first = r.u8()
    if first & 0x03 != 0x00:
        raise PduError(f"not an SMS-DELIVER (first octet {first:02X})")
    start = r.pos - 1
    sender, toa = _decode_address(r)
    r.take(1)  # TP-PID
    alphabet = _alphabet(r.u8())
    sent_at = _decode_scts(r.take(7))
    payload, concat = _decode_user_data(r, alphabet, udhi=bool(first & 0x40))
    r.done()
    return Sms(
        "deliver", sender, _text(alphabet, payload), alphabet, payload, concat, smsc,
        sent_at, None, len(r.data) - start, bool(first & 0x20), numeric_address(toa),
    )  # fmt: skip


def decode_submit(pdu: str, *, with_smsc: bool = True) -> Sms:
    """An SMS-SUBMIT as a sender types it after the ``> `` prompt (for the simulator)."""
    r = _Reader(_from_hex(pdu))
    smsc = _decode_smsc(r) if with_smsc else None
    start = r.pos
    first = r.u8()
    if first & 0x03 != 0x01:
        raise PduError(f"not an SMS-SUBMIT (first octet {first:02X})")
    ref = r.u8()
    number, toa = _decode_address(r)
    r.take(1)  # TP-PID
    alphabet = _alphabet(r.u8())
    r.take({0x00: 0, 0x10: 1, 0x08: 7, 0x18: 7}[first & 0x18])  # TP-VP by TP-VPF
    payload, concat = _decode_user_data(r, alphabet, udhi=bool(first & 0x40))
    r.done()
    return Sms(
        "submit", number, _text(alphabet, payload), alphabet, payload, concat, smsc,
        None, ref, len(r.data) - start, bool(first & 0x20), numeric_address(toa),
    )  # fmt: skip


def _decode_smsc(r: _Reader) -> str | None:
    length = r.u8()
    if length == 0:
        return None
    toa, digits = r.u8(), r.take(length - 1)
    number = _bcd_digits(digits, 2 * len(digits))
    return ("+" if (toa >> 4) & 0x07 == 1 else "") + number


def _decode_address(r: _Reader) -> tuple[str, int]:
    """TP-OA / TP-DA and its type-of-address octet: ``+`` and digits when international,
    a name when alphanumeric."""
    count, toa = r.u8(), r.u8()
    if count > 22:
        raise PduError(f"address of {count} semi-octets")
    raw = r.take((count + 1) // 2)
    ton = (toa >> 4) & 0x07
    if ton == 0x05:
        return gsm_text(unpack_septets(raw, count * 4 // 7)), toa
    return ("+" if ton == 1 else "") + _bcd_digits(raw, count), toa


def numeric_address(toa: int) -> bool:
    """Whether a type-of-address octet (TS 23.040 §9.1.2.5) is a phone number's: type of
    number unknown, international or national, numbering plan unknown or E.164. Anything
    else (alphanumeric ``0x50``/``0xD0``, network-specific, subscriber, abbreviated, other
    plans) is not: anyone can send an alphanumeric sender that reads like a number."""
    ton, npi = (toa >> 4) & 0x07, toa & 0x0F
    return ton in (0, 1, 2) and npi in (0, 1)


def _alphabet(dcs: int) -> Alphabet:
    """The alphabet a TP-DCS names (TS 23.038 §4); reserved codings read as GSM 7-bit."""
    group = dcs >> 4
    if group <= 0x07:
        if dcs & 0x20:
            raise PduError("compressed text is not supported")
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x03]  # type: ignore[return-value]
    if group == 0x0E:
        return "ucs2"
    if group == 0x0F and dcs & 0x04:
        return "8bit"
    return "gsm7"


def _decode_scts(raw: bytes) -> datetime | None:
    """TP-SCTS; None when the service centre sent an impossible date."""
    v = [(b & 0x0F) * 10 + (b >> 4) for b in raw]
    tz = raw[6]
    quarters = ((tz & 0x07) * 10 + (tz >> 4)) * (-1 if tz & 0x08 else 1)
    try:
        zone = timezone(timedelta(minutes=15 * quarters))
        year = v[0] + (1900 if v[0] >= 70 else 2000)  # a 2-digit year; none before 1970
        return datetime(year, v[1], v[2], v[3], v[4], v[5], tzinfo=zone)
    except ValueError:
        return None


def _decode_user_data(r: _Reader, alphabet: Alphabet, *, udhi: bool) -> tuple[bytes, Concat | None]:
    """TP-UDL and TP-UD: the payload after the header (septets for GSM), and its Concat."""
    udl = r.u8()
    if udl > (160 if alphabet == "gsm7" else 140):
        raise PduError(f"user data length {udl} too long")
    ud = r.take((udl * 7 + 7) // 8 if alphabet == "gsm7" else udl)
    header_len = 0
    if udhi:
        if not ud or ud[0] + 1 > len(ud):
            raise PduError("user data header longer than the user data")
        header_len = ud[0] + 1
    concat = _concat(ud[1:header_len]) if udhi else None
    if alphabet != "gsm7":
        return ud[header_len:], concat
    header_septets = (header_len * 8 + 6) // 7
    if header_septets > udl:
        raise PduError("user data header longer than the user data")
    fill = header_septets * 7 - header_len * 8
    return bytes(unpack_septets(ud[header_len:], udl - header_septets, fill)), concat


def _concat(header: bytes) -> Concat | None:
    """The concatenation element of a UDH (IEI 0x00 or 0x08); invalid ones are ignored."""
    i, found = 0, None
    while i + 2 <= len(header):
        iei, length = header[i], header[i + 1]
        data = header[i + 2 : i + 2 + length]
        if len(data) < length:
            raise PduError("user data header element truncated")
        if iei == 0x00 and length == 3:
            found = Concat(data[0], data[1], data[2])
        elif iei == 0x08 and length == 4:
            found = Concat(int.from_bytes(data[:2], "big"), data[2], data[3])
        i += 2 + length
    if found is None or not 1 <= found.seq <= found.total:
        return None
    return found


def _text(alphabet: Alphabet, payload: bytes) -> str:
    if alphabet == "gsm7":
        return gsm_text(payload)
    if alphabet == "ucs2":
        return payload.decode("utf-16-be", errors="replace")
    return payload.decode("latin-1")


# -- reassembly --------------------------------------------------------------------------


_Key = tuple[str, bool, int, int]  # sender, numeric, concatenation ref, total parts


@dataclass(frozen=True, slots=True)
class Assembled:
    """A whole message (or what arrived of it before ``timeout_s``) and the caller's tokens
    (e.g. SIM storage indices to delete)."""

    number: str
    text: str
    parts: int
    total: int
    tokens: tuple[int, ...]
    numeric: bool = True  # the sender's type of address is a phone number's

    @property
    def complete(self) -> bool:
        return self.parts == self.total


class Reassembler:
    """Joins the parts of concatenated messages, sans-I/O: the caller passes ``now``
    (monotonic seconds). A part seen twice replaces the first copy."""

    def __init__(self, timeout_s: float = 600.0) -> None:
        self._timeout_s = timeout_s
        self._pending: dict[_Key, tuple[float, dict[int, tuple[Sms, int]]]] = {}

    def add(self, sms: Sms, now: float, token: int = -1) -> Assembled | None:
        """Returns the message once all its parts are in; a single-part one at once."""
        if sms.concat is None:
            return Assembled(sms.number, sms.text, 1, 1, (token,) if token >= 0 else (),
                             sms.numeric)
        # the address type is part of the key: an alphanumeric "0912…" never joins a number
        key = (sms.number, sms.numeric, sms.concat.ref, sms.concat.total)
        _, parts = self._pending.setdefault(key, (now, {}))
        parts[sms.concat.seq] = (sms, token)
        if len(parts) < sms.concat.total:
            return None
        del self._pending[key]
        return _join(key, parts)

    def expired(self, now: float) -> list[Assembled]:
        """Incomplete messages older than ``timeout_s``, given up and returned as they are."""
        old = [k for k, (t, _) in self._pending.items() if now - t >= self._timeout_s]
        return [_join(k, self._pending.pop(k)[1]) for k in old]


def _join(key: _Key, parts: dict[int, tuple[Sms, int]]) -> Assembled:
    ordered = [parts[seq] for seq in sorted(parts)]
    alphabet = ordered[0][0].alphabet
    text = _text(alphabet, b"".join(sms.payload for sms, _ in ordered))
    tokens = tuple(t for _, t in ordered if t >= 0)
    return Assembled(key[0], text, len(ordered), key[3], tokens, key[1])
