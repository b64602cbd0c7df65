"""SIA DC-09 framing, sans-I/O: messages out, the receiver's answers in (SPEC §7).

A message is one line ``<LF><crc><len>"<id>"<seq>R<r>L<l>#<acct>[<data><CR>``:

* ``crc`` is CRC-16/ARC (poly 0xA001 reflected, init 0) of everything from the opening ``"``
  to the end of the data, as 4 upper-case hex digits; ``len`` is that span's length in
  bytes, as 4 upper-case hex digits (strict when sending; lenient when reading answers,
  since real receivers are known to get it wrong).
* ``id`` is ``SIA-DCS`` (a DC-03 event) or ``NULL`` (a link test), prefixed ``*`` when the
  data is AES-CBC encrypted; ``seq`` counts 0001–9999 and is repeated on a resend.
* the data is ``#<acct>|N[ri<area>/]<CODE><zone>[|A<text>]]_HH:MM:SS,MM-DD-YYYY`` (UTC).
  Encrypted, it becomes hex of AES-CBC (IV all zeros) over ``<pad>|<that>``; the pad is
  1–16 random letters and digits so the plain text fills whole 16-byte blocks. A ``NULL``
  carries only ``]<timestamp>`` (after the pad when encrypted).

The receiver answers ``ACK`` (encrypted ``*ACK`` when we encrypted), ``NAK`` with its own
time stamp (ours was outside its window: resynchronise and resend), ``DUH`` (understood,
cannot process) or ``RSP``. Nothing here opens a socket; :mod:`.link` does.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.core.errors import GatewayError

KEY_SIZES = (16, 24, 32)  # bytes: AES-128, AES-192, AES-256
MAX_SEQ = 9999
MAX_TEXT = 64  # characters of the ASCII text block
MAX_ANSWER = 1024  # bytes: longer is not a DC-09 answer
IV = bytes(16)

_HEX = re.compile(r"[0-9A-F]+")
_CODE = re.compile(r"[A-Z]{2}")
_STAMP = "%H:%M:%S,%m-%d-%Y"
_STAMP_RE = re.compile(r"_?(\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})\s*$")
_ANSWER = re.compile(
    r'(?P<crc>[0-9A-Fa-f]{4})(?P<len>[0-9A-Fa-f]{4})'
    r'(?P<body>"(?P<enc>\*)?(?P<kind>ACK|NAK|DUH|RSP)"(?P<seq>\d{4})'
    r'(?P<ids>[^\[]*)\[(?P<rest>.*))')
_IDS = re.compile(r"([RLA#])([0-9A-Fa-f]{1,16})")
_PAD_ALPHABET = string.ascii_letters + string.digits
_FORBIDDEN_IN_TEXT = str.maketrans({c: " " for c in "[]|^/\\\"_"})


class Dc09Error(GatewayError, ValueError):
    """A DC-09 identity, message or answer is malformed."""


class MessageId(StrEnum):
    """The DC-09 message types the gateway sends."""

    SIA_DCS = "SIA-DCS"
    NULL = "NULL"


class AnswerKind(StrEnum):
    """What a receiving centre can answer."""

    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"
    RSP = "RSP"


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """Who we are at one receiver: ``account`` (3–16 hex), ``line`` (``L``, 1–6 hex),
    ``receiver`` (``R``, 1–6 hex, optional) and the AES ``key`` (16/24/32 bytes) or None."""

    account: str
    line: str = "0"
    receiver: str | None = None
    key: bytes | None = None

    def __post_init__(self) -> None:
        problem = identity_problem(self.account, self.line, self.receiver, self.key)
        if problem:
            raise Dc09Error(problem)


@dataclass(frozen=True, kw_only=True, slots=True)
class SiaEvent:
    """One DC-03 event: ``code`` (two letters), ``zone`` (0–9999, the device's number),
    ``area`` (``ri``, the ward's number) and a short ASCII ``text`` (folded by :func:`fold`)."""

    code: str
    zone: int | None = None
    area: int | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if not _CODE.fullmatch(self.code):
            raise Dc09Error(f"SIA code must be two capital letters, not {self.code!r}")
        for name, value in (("zone", self.zone), ("area", self.area)):
            if value is not None and not 0 <= value <= 9999:
                raise Dc09Error(f"{name} must be 0..9999, not {value}")
        object.__setattr__(self, "text", fold(self.text))


@dataclass(frozen=True, slots=True)
class Answer:
    """A receiver's answer. ``timestamp`` (unix s) when it carried one (a NAK always should);
    ``length_ok`` is False when its length field was wrong (tolerated, counted)."""

    kind: AnswerKind
    seq: int
    encrypted: bool
    timestamp: float | None
    account: str | None
    length_ok: bool = True


def identity_problem(account: str, line: str, receiver: str | None,
                     key: bytes | None) -> str | None:
    """Why these identity fields cannot be sent (``check-config`` shows it), or None."""
    if not (3 <= len(account) <= 16 and _HEX.fullmatch(account)):
        return f"account must be 3 to 16 hex digits (0-9, A-F), not {account!r}"
    if not (1 <= len(line) <= 6 and _HEX.fullmatch(line)):
        return f"line must be 1 to 6 hex digits, not {line!r}"
    if receiver is not None and not (1 <= len(receiver) <= 6 and _HEX.fullmatch(receiver)):
        return f"receiver must be 1 to 6 hex digits, not {receiver!r}"
    if key is not None and len(key) not in KEY_SIZES:
        return f"key must be 16, 24 or 32 bytes (AES-128/192/256), not {len(key)}"
    return None


def crc16(data: bytes) -> int:
    """CRC-16/ARC: reflected poly 0xA001, init 0, no final XOR (DC-09's CRC)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def fold(text: str, limit: int = MAX_TEXT) -> str:
    """Printable ASCII for the text block: Vietnamese diacritics dropped (``đ`` → ``d``),
    DC-03's separators and anything unprintable turned into spaces, at most ``limit`` chars."""
    text = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(c for c in unicodedata.normalize("NFD", text)
                    if not unicodedata.combining(c))
    plain = plain.translate(_FORBIDDEN_IN_TEXT)
    plain = "".join(c if " " <= c <= "~" else " " for c in plain)
    return " ".join(plain.split())[:limit].rstrip()


def timestamp(unix_s: float) -> str:
    """``_HH:MM:SS,MM-DD-YYYY`` in UTC, as DC-09 wants it."""
    return "_" + datetime.fromtimestamp(unix_s, UTC).strftime(_STAMP)


def sia_data(identity: Identity, event: SiaEvent) -> str:
    """The DC-03 block of ``event`` (without the closing ``]``)."""
    area = f"ri{event.area}/" if event.area is not None else ""
    zone = f"{event.zone:03d}" if event.zone is not None else ""
    text = f"|A{event.text}" if event.text else ""
    return f"#{identity.account}|N{area}{event.code}{zone}{text}"


def encode(identity: Identity, seq: int, event: SiaEvent | None, *, now: float,
           pad: Callable[[int], str] | None = None) -> bytes:
    """One framed message: ``event`` as ``SIA-DCS``, or a ``NULL`` link test when None.

    ``now`` (unix s, already corrected by any offset a NAK taught us) is the time stamp;
    ``pad`` makes the encryption pad (random by default; tests pass a fixed one).
    """
    if not 1 <= seq <= MAX_SEQ:
        raise Dc09Error(f"sequence must be 1..{MAX_SEQ}, not {seq}")
    kind = MessageId.NULL if event is None else MessageId.SIA_DCS
    content = "" if event is None else sia_data(identity, event)
    tail = f"{content}]{timestamp(now)}"
    if identity.key is not None:
        inner = tail if event is None else f"|{tail}"
        tail = encrypt(identity.key, inner, pad or random_pad)
    star = "*" if identity.key is not None else ""
    r = f"R{identity.receiver}" if identity.receiver is not None else ""
    body = f'"{star}{kind}"{seq:04d}{r}L{identity.line}#{identity.account}[{tail}'
    raw = body.encode("ascii")
    return b"\n" + f"{crc16(raw):04X}{len(raw):04X}".encode("ascii") + raw + b"\r"


def random_pad(n: int) -> str:
    """``n`` random letters and digits (never ``[``, ``]`` or ``|``, which DC-09 forbids)."""
    return "".join(secrets.choice(_PAD_ALPHABET) for _ in range(n))


def encrypt(key: bytes, text: str, pad: Callable[[int], str]) -> str:
    """Hex (upper case) of AES-CBC over ``pad + text``, filled to whole 16-byte blocks."""
    n = 16 - len(text) % 16
    plain = (pad(n) + text).encode("ascii")
    if len(plain) % 16:
        raise Dc09Error("the pad did not fill the block")
    enc = Cipher(algorithms.AES(key), modes.CBC(IV)).encryptor()
    return (enc.update(plain) + enc.finalize()).hex().upper()


def decrypt(key: bytes, hex_text: str) -> str:
    """The ASCII plain text of an encrypted block; :class:`Dc09Error` if it is not one."""
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        raise Dc09Error("encrypted data is not hex") from None
    if not data or len(data) % 16:
        raise Dc09Error(f"encrypted data is {len(data)} bytes, not whole AES blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(IV)).decryptor()
    plain = dec.update(data) + dec.finalize()
    try:
        text = plain.decode("ascii")
    except UnicodeDecodeError:
        raise Dc09Error("decrypted answer is not ASCII (wrong key?)") from None
    if not text.isprintable():
        raise Dc09Error("decrypted answer is not printable (wrong key?)")
    return text


def decode_answer(raw: bytes, identity: Identity) -> Answer:
    """Read one answer line (``<LF>…<CR>``); :class:`Dc09Error` for anything that is not a
    well-formed answer with a good CRC (an encrypted one must decrypt with our key)."""
    if len(raw) > MAX_ANSWER:
        raise Dc09Error(f"answer over {MAX_ANSWER} bytes")
    try:
        line = raw.decode("ascii").strip("\r\n\x00 ")
    except UnicodeDecodeError:
        raise Dc09Error("answer is not ASCII") from None
    m = _ANSWER.fullmatch(line)
    if m is None:
        raise Dc09Error(f"not a DC-09 answer: {line[:60]!r}")
    body = m["body"].encode("ascii")
    if int(m["crc"], 16) != crc16(body):
        raise Dc09Error(f"answer CRC {m['crc']} does not match {crc16(body):04X}")
    ids = dict(_IDS.findall(m["ids"]))
    rest, encrypted = m["rest"], bool(m["enc"])
    if encrypted:
        if identity.key is None:
            raise Dc09Error("encrypted answer but no key is configured")
        rest = decrypt(identity.key, rest)
    stamp = _STAMP_RE.search(rest)
    return Answer(AnswerKind(m["kind"]), int(m["seq"]), encrypted,
                  _parse_stamp(stamp.group(1)) if stamp else None, ids.get("#"),
                  int(m["len"], 16) == len(body))


def _parse_stamp(text: str) -> float | None:
    try:
        return datetime.strptime(text, _STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
