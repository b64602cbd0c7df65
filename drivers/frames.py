"""Serial bus frame codec (SPEC §2), sans-I/O: bytes in, :class:`Frame` out, and back.

One frame is one ASCII line::

    $PB1,<node>,<seq>,<type>,<value>,<batt_mv>[,<mac>]*<crc>\\n

The CRC (CRC-16/CCITT-FALSE, 4 uppercase hex digits) covers the bytes strictly between ``$``
and ``*``; the MAC (first 8 bytes of HMAC-SHA256, 16 lowercase hex digits) covers the bytes
from ``PB1`` up to but not including ``,<mac>``. The same codec runs in the gateway (uplink)
and in the host build of the node firmware's tests (downlink).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

from gateway.core.errors import GatewayError

MAX_LINE: Final = 128
"""Longest accepted frame in bytes, not counting the line ending."""

REASONS: Final = (
    "too_long",
    "bad_crc",
    "bad_mac",
    "missing_mac",
    "unknown_node",
    "unknown_type",
    "malformed",
)


class FrameType(StrEnum):
    """The ``type`` field; uplink comes from nodes, downlink from the gateway."""

    PRESS = "PRESS"
    HOLD = "HOLD"
    RELEASE = "RELEASE"
    HB = "HB"
    TAMPER = "TAMPER"
    TAMPER_OK = "TAMPER_OK"
    OPEN = "OPEN"
    CLOSE = "CLOSE"
    BOOT = "BOOT"
    ACK = "ACK"
    STATE = "STATE"


UPLINK: Final = frozenset(FrameType) - {FrameType.ACK, FrameType.STATE}
DOWNLINK: Final = frozenset({FrameType.ACK, FrameType.STATE})


class Missing(Enum):
    """Returned by a ``key_for`` lookup for a node the site does not know."""

    NODE = "unknown node"


UNKNOWN_NODE: Final = Missing.NODE

KeyLookup = Callable[[int], "bytes | Missing | None"]
"""node id -> its key (bytes), None for a known node without a key, or UNKNOWN_NODE."""


class FrameError(GatewayError, ValueError):
    """A line that is not an acceptable frame. ``reason`` is one of :data:`REASONS`.

    ``node`` and ``type`` are filled when the line parsed far enough to tell them (so an
    unknown node's BOOT can be offered for enrolment, and a bad MAC blamed on its device).
    """

    def __init__(self, reason: str, node: int | None = None, type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node
        self.type = type


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``value`` by type: HOLD seconds held, HB uptime in s, ACK/STATE
    the LED state, else 0. ``batt_mv`` is the battery in millivolts (0 = mains powered)."""

    node: int
    seq: int
    type: FrameType
    value: int = 0
    batt_mv: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.type, FrameType):
            object.__setattr__(self, "type", FrameType(self.type))
        if not 1 <= self.node <= 0xFFFF:
            raise FrameError("malformed")
        if not 0 <= self.seq <= 0xFFFF:
            raise FrameError("malformed")
        if not 0 <= self.batt_mv <= 0xFFFF or not -(10**9) < self.value < 10**9:
            raise FrameError("malformed")


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def frame_mac(key: bytes, signed: bytes) -> bytes:
    """The MAC field: first 8 bytes of HMAC-SHA256(key, signed) as 16 lowercase hex digits."""
    return hmac.new(key, signed, hashlib.sha256).hexdigest()[:16].encode("ascii")


def encode_frame(frame: Frame, key: bytes | None = None) -> bytes:
    """The wire bytes of ``frame`` (with ``\\n``), MAC'd when ``key`` is given."""
    body = f"PB1,{frame.node},{frame.seq},{frame.type},{frame.value},{frame.batt_mv}".encode()
    if key is not None:
        body += b"," + frame_mac(key, body)
    line = b"$" + body + b"*%04X" % crc16_ccitt_false(body)
    if len(line) > MAX_LINE:
        raise FrameError("too_long", frame.node, str(frame.type))
    return line + b"\n"


_FRAMING = re.compile(rb"\$([\x20-\x7e]*)\*([0-9A-Fa-f]{4})")
_DEC = re.compile(rb"0|[1-9][0-9]{0,4}")
_VALUE = re.compile(rb"-?(0|[1-9][0-9]{0,8})")
_MAC = re.compile(rb"[0-9a-f]{16}")


def decode_frame(line: bytes, key_for: KeyLookup, accept: Collection[FrameType] = UPLINK) -> Frame:
    """Parse and check one line (a trailing ``\\n`` or ``\\r\\n`` is allowed).

    ``key_for`` says which nodes exist and which have keys; ``accept`` is the set of types
    this end may receive (uplink at the gateway, downlink at a node). Raises
    :class:`FrameError` and nothing else, whatever the bytes.
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise FrameError("too_long")
    match = _FRAMING.fullmatch(line)
    if match is None:
        raise FrameError("malformed")
    body, crc = match.group(1), match.group(2)
    if int(crc, 16) != crc16_ccitt_false(body):
        raise FrameError("bad_crc")
    fields = body.split(b",")
    if len(fields) not in (6, 7) or fields[0] != b"PB1":
        raise FrameError("malformed")
    node, seq, batt = (_decimal(fields[i]) for i in (1, 2, 5))
    value = _decimal(fields[4], _VALUE)
    type_text = fields[3].decode("ascii")
    if not 1 <= node <= 0xFFFF:
        raise FrameError("malformed")
    if type_text not in FrameType.__members__ or FrameType(type_text) not in accept:
        raise FrameError("unknown_type", node, type_text)
    key = key_for(node)
    if key is UNKNOWN_NODE:
        raise FrameError("unknown_node", node, type_text)
    _check_mac(fields, key, node, type_text)
    return Frame(node, seq, FrameType(type_text), value, batt)


def _decimal(field: bytes, pattern: re.Pattern[bytes] = _DEC) -> int:
    if pattern.fullmatch(field) is None:
        raise FrameError("malformed")
    number = int(field)
    if pattern is _DEC and number > 0xFFFF:
        raise FrameError("malformed")
    return number


def _check_mac(fields: list[bytes], key: bytes | Missing | None, node: int, typ: str) -> None:
    """A keyed node must carry a valid MAC; an unkeyed node's MAC field must at least be
    well formed (it cannot be checked, and is ignored)."""
    mac = fields[6] if len(fields) == 7 else None
    if mac is not None and _MAC.fullmatch(mac) is None:
        raise FrameError("malformed", node, typ)
    if not isinstance(key, bytes):
        return
    if mac is None:
        raise FrameError("missing_mac", node, typ)
    if not hmac.compare_digest(mac, frame_mac(key, b",".join(fields[:6]))):
        raise FrameError("bad_mac", node, typ)


class LineSplitter:
    """Cuts a byte stream into lines, with bounded memory.

    Bytes that run past :data:`MAX_LINE` (+1 for a ``\\r``) without a ``\\n`` are garbage:
    their first ``MAX_LINE + 2`` bytes are returned as one line (so the decoder rejects and
    counts it as ``too_long``) and the rest is dropped up to the next ``\\n``. ``dropped``
    counts the bytes thrown away that way.
    """

    def __init__(self, limit: int = MAX_LINE + 1) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._discarding = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete lines (without ``\\n``) they finished."""
        lines: list[bytes] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            chunk = data[start:] if end < 0 else data[start:end]
            self._take(chunk, lines)
            if end < 0:
                break
            if not self._discarding:
                lines.append(bytes(self._buf))
            self._buf.clear()
            self._discarding = False
            start = end + 1
        return lines

    def _take(self, chunk: bytes, lines: list[bytes]) -> None:
        if self._discarding:
            self.dropped += len(chunk)
            return
        self._buf += chunk
        if len(self._buf) > self._limit:
            lines.append(bytes(self._buf[: self._limit + 1]))
            self.dropped += len(self._buf) - self._limit - 1
            self._buf.clear()
            self._discarding = True

    @property
    def pending(self) -> int:
        """Bytes held waiting for a ``\\n`` (never more than the limit)."""
        return len(self._buf)


def ack_frame(node: int, seq: int, led: int) -> Frame:
    """The gateway's answer to an accepted uplink frame: same ``seq``, value = LED state."""
    return Frame(node, seq, FrameType.ACK, led, 0)


def state_frame(node: int, seq: int, led: int) -> Frame:
    """An unsolicited LED update (the gateway's own ``seq``)."""
    return Frame(node, seq, FrameType.STATE, led, 0)
