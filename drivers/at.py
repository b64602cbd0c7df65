"""AT command responses (3GPP TS 27.007 / 27.005), sans-I/O: bytes in, events out.

A modem interleaves two streams on one line: the answer to the command in flight and
unsolicited result codes (URCs) such as ``+CMTI`` (a new SMS was stored). The parser is told
which command is pending (:meth:`AtParser.begin`) and sorts every line: the command's
intermediate lines and final result become one :class:`Response`; the ``> `` prompt of
``AT+CMGS`` becomes a :class:`Prompt`; everything else becomes an :class:`Urc`, also while a
command is pending (a parser that takes a ``+CMTI`` for part of an answer loses the police's
reply). ``+CMT`` and ``+CDS`` are followed by a PDU line, which is kept with their URC.

The small parsers below turn answer lines into values (signal, registration, SIM state).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final as TypingFinal

from gateway.core.errors import GatewayError

MAX_LINE: TypingFinal = 4096  # bytes without a line end before the buffer is dropped as noise
REGISTERED: TypingFinal = frozenset({1, 5, 6, 7, 9, 10})
"""+CREG/+CEREG stats that allow SMS: home (1), roaming (5), SMS only (6, 7), CSFB not
preferred (9, 10). 0 is not searching, 2 searching, 3 denied, 4 unknown, 8 emergency only."""
ROAMING: TypingFinal = frozenset({5, 7, 10})

CMS_ERRORS: TypingFinal = {
    1: "unassigned number", 8: "operator determined barring", 10: "call barred",
    17: "network failure", 21: "short message transfer rejected",
    22: "memory capacity exceeded", 27: "destination out of service",
    28: "unidentified subscriber", 29: "facility rejected", 30: "unknown subscriber",
    38: "network out of order", 41: "temporary failure", 42: "congestion",
    47: "resources unavailable", 50: "requested facility not subscribed",
    96: "invalid mandatory information", 111: "protocol error", 127: "interworking unspecified",
    300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter",
    305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
    312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy", 315: "SIM wrong",
    316: "SIM PUK required", 320: "memory failure", 321: "invalid memory index",
    322: "memory full", 330: "SMSC address unknown", 331: "no network service",
    332: "network timeout", 340: "no +CNMA acknowledgement expected", 500: "unknown error",
}  # fmt: skip
"""``+CMS ERROR`` codes (TS 27.005 §3.2.5; 1-127 are network causes from TS 24.011)."""

CME_ERRORS: TypingFinal = {
    0: "phone failure", 3: "operation not allowed", 4: "operation not supported",
    10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required",
    13: "SIM failure", 14: "SIM busy", 15: "SIM wrong", 16: "incorrect password",
    20: "memory full", 21: "invalid index", 30: "no network service",
    31: "network timeout", 100: "unknown",
}  # fmt: skip
"""``+CME ERROR`` codes (TS 27.007 §9.2)."""

PDU_URCS: TypingFinal = frozenset({"+CMT", "+CDS", "+CBM"})
"""URCs whose next line is a PDU that belongs to them."""
BARE_URCS: TypingFinal = frozenset(
    {"RING", "NO CARRIER", "RDY", "SMS DONE", "PB DONE", "SMS READY", "CALL READY"}
)
PROMPTING: TypingFinal = frozenset({"+CMGS", "+CMGW", "+CMGC"})
_PREFIX = re.compile(r"^AT([+&%$^*#][A-Z0-9]+)", re.IGNORECASE)


class AtError(GatewayError, ValueError):
    """An answer line that does not say what it should (a parser's input was malformed)."""


class ModemError(GatewayError):
    """The modem refused or did not answer. ``kind`` is ``cms``, ``cme``, ``error``,
    ``timeout`` or ``offline``; ``code`` is the +CMS/+CME number when the modem gave one."""

    def __init__(self, message: str, *, kind: str = "error", code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


@dataclass(frozen=True, slots=True)
class Final:
    """A final result code: ``OK``, ``ERROR``, ``+CME ERROR`` or ``+CMS ERROR``. ``code`` is
    known when numeric (``AT+CMEE=1``) or when verbose text (``AT+CMEE=2``) is in the table."""

    kind: str
    code: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "OK"

    def error(self, command: str) -> ModemError:
        """The :class:`ModemError` this result means for ``command``."""
        code = f" {self.code}" if self.code is not None else ""
        what = f" ({self.text})" if self.text else ""
        short = {"+CMS ERROR": "cms", "+CME ERROR": "cme"}.get(self.kind, "error")
        return ModemError(f"{command}: {self.kind}{code}{what}", kind=short, code=self.code)


@dataclass(frozen=True, slots=True)
class Response:
    """The whole answer to one command: its intermediate lines and its final result."""

    command: str
    lines: tuple[str, ...]
    final: Final


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``> `` prompt: the modem waits for the PDU and Ctrl-Z (or ESC to abort)."""

    command: str


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code; ``name`` is ``+CMTI``, ``RING``, ... (the whole line for
    an unknown bare line), ``args`` what follows ``: ``, ``pdu`` the line after a ``+CMT``."""

    name: str
    args: str
    line: str
    pdu: str | None = None


AtEvent = Response | Prompt | Urc


@dataclass(slots=True)
class _Pending:
    command: str
    prefix: str | None
    prompt: bool
    lines: list[str] = field(default_factory=list)


class AtParser:
    """Feed it bytes as they come (any fragmentation); it returns the events they complete."""

    def __init__(self) -> None:
        self._buf = b""
        self._pending: _Pending | None = None
        self._urc_pdu: Urc | None = None

    @property
    def pending(self) -> str | None:
        return self._pending.command if self._pending else None

    def begin(self, command: str) -> None:
        """A command (without its CR) is about to be written; its answer follows."""
        if self._pending is not None:
            raise AtError(f"{self._pending.command} is still pending")
        m = _PREFIX.match(command)
        prefix = m.group(1).upper() if m else None
        self._pending = _Pending(command.strip(), prefix, prefix in PROMPTING)

    def abandon(self) -> None:
        """Forget the pending command (it timed out); a late answer is then dropped."""
        self._pending = None

    def reset(self) -> None:
        """Start afresh, as after reopening the port."""
        self._buf, self._pending, self._urc_pdu = b"", None, None

    def feed(self, data: bytes) -> list[AtEvent]:
        self._buf += data
        events: list[AtEvent] = []
        while True:
            ends = [i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0]
            if not ends:
                break
            raw, self._buf = self._buf[: min(ends)], self._buf[min(ends) + 1 :]
            text = raw.decode("ascii", errors="replace").strip(" \t\x1a\x1b\x00")
            if text:
                self._line(text, events)
        self._maybe_prompt(events)
        if len(self._buf) > MAX_LINE:
            self._buf = b""
        return events

    def _maybe_prompt(self, events: list[AtEvent]) -> None:
        p = self._pending
        if p is not None and p.prompt and self._buf.lstrip(b"\r\n").startswith(b">"):
            self._buf = b""
            p.prompt = False
            events.append(Prompt(p.command))

    def _line(self, text: str, events: list[AtEvent]) -> None:
        if self._urc_pdu is not None:
            events.append(replace(self._urc_pdu, pdu=text))
            self._urc_pdu = None
            return
        p = self._pending
        final = parse_final(text)
        if p is not None and text.upper() == p.command.upper():
            return  # the echo, before ATE0 took effect
        if p is not None and final is not None:
            events.append(Response(p.command, tuple(p.lines), final))
            self._pending = None
        elif p is not None and not _is_urc(text, p.prefix):
            p.lines.append(text)
        elif final is None:
            self._urc(text, events)

    def _urc(self, text: str, events: list[AtEvent]) -> None:
        name, sep, args = text.partition(":")
        urc = Urc(name.strip(), args.strip(), text) if sep else Urc(text, "", text)
        if urc.name in PDU_URCS:
            self._urc_pdu = urc
        else:
            events.append(urc)


def _is_urc(text: str, prefix: str | None) -> bool:
    """Whether a line seen while a command is pending is unsolicited rather than its answer."""
    if text in BARE_URCS:
        return True
    if not text.startswith("+"):
        return False  # a bare answer line (a PDU after +CMGR, ATI text)
    name = text.partition(":")[0].strip().upper()
    return name != prefix


def parse_final(text: str) -> Final | None:
    """The final result code a line is, or None."""
    if text in ("OK", "ERROR"):
        return Final(text)
    for kind, table in (("+CME ERROR", CME_ERRORS), ("+CMS ERROR", CMS_ERRORS)):
        if text.upper().startswith(kind + ":"):
            detail = text[len(kind) + 1 :].strip()
            if detail.isdigit():
                return Final(kind, int(detail), table.get(int(detail), ""))
            by_text = {v.lower(): k for k, v in table.items()}
            return Final(kind, by_text.get(detail.lower()), detail)
    return None


# -- answer parsers ----------------------------------------------------------------------


def fields(args: str) -> list[str]:
    """Comma-separated values, quotes removed (``"SM",3`` → ``["SM", "3"]``)."""
    return [f.strip() for f in next(csv.reader([args], skipinitialspace=True), [])]


def _values(line: str, name: str) -> list[str]:
    head, sep, args = line.partition(":")
    if not sep or head.strip().upper() != name:
        raise AtError(f"expected {name}: in {line!r}")
    return fields(args)


def _int(value: str, line: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise AtError(f"not a number in {line!r}") from exc


@dataclass(frozen=True, slots=True)
class Signal:
    """``+CSQ``: ``dbm`` is None when the modem does not know (rssi 99)."""

    rssi: int
    ber: int
    dbm: int | None


def rssi_to_dbm(rssi: int) -> int | None:
    """TS 27.007 §8.5: 0 is -113 dBm or less, 2..30 is -109..-53, 31 is -51 or more."""
    if 0 <= rssi <= 31:
        return -113 + 2 * rssi
    return None


def parse_csq(line: str) -> Signal:
    """``+CSQ: <rssi>,<ber>`` as a :class:`Signal` with the RSSI in dBm (None: unknown)."""
    values = _values(line, "+CSQ")
    if len(values) != 2:
        raise AtError(f"+CSQ needs rssi,ber: {line!r}")
    rssi, ber = (_int(v, line) for v in values)
    return Signal(rssi, ber, rssi_to_dbm(rssi))


@dataclass(frozen=True, slots=True)
class Registration:
    """``+CREG``/``+CEREG``/``+CGREG``: ``stat`` and what it means for sending SMS."""

    stat: int
    lac: str | None = None
    ci: str | None = None
    act: int | None = None

    @property
    def registered(self) -> bool:
        return self.stat in REGISTERED

    @property
    def roaming(self) -> bool:
        return self.stat in ROAMING


def parse_registration(line: str, *, unsolicited: bool = False) -> Registration:
    """The answer to ``AT+CREG?`` (``<n>,<stat>[,<lac>,<ci>[,<AcT>]]``) or, with
    ``unsolicited``, the URC (``<stat>[,<lac>,<ci>[,<AcT>]]``); CEREG and CGREG alike."""
    name = line.partition(":")[0].strip().upper()
    if name not in ("+CREG", "+CEREG", "+CGREG"):
        raise AtError(f"not a registration line: {line!r}")
    values = _values(line, name)[0 if unsolicited else 1 :]
    if not values or not values[0]:
        raise AtError(f"no <stat> in {line!r}")
    stat = _int(values[0], line)
    extra = [v or None for v in values[1:4]] + [None] * 3
    act = _int(extra[2], line) if extra[2] else None
    return Registration(stat, extra[0], extra[1], act)


def parse_cpin(line: str) -> str:
    """``+CPIN: READY`` → ``READY`` (or ``SIM PIN``, ``SIM PUK`` ...)."""
    values = _values(line, "+CPIN")
    if not values or not values[0]:
        raise AtError(f"empty +CPIN: {line!r}")
    return values[0].upper()


def parse_cmgs(line: str) -> int:
    """``+CMGS: <mr>`` → the message reference the network gave the part."""
    values = _values(line, "+CMGS")
    if not values:
        raise AtError(f"empty +CMGS: {line!r}")
    return _int(values[0], line)


def parse_cmti(urc: Urc) -> tuple[str, int]:
    """``+CMTI: "SM",3`` → ``("SM", 3)``: where the new message is stored."""
    values = fields(urc.args)
    if urc.name != "+CMTI" or len(values) < 2:
        raise AtError(f"not a +CMTI: {urc.line!r}")
    return values[0], _int(values[1], urc.line)


def parse_cmgr(lines: Sequence[str]) -> tuple[int, str]:
    """PDU-mode ``AT+CMGR`` answer → ``(stat, pdu hex)``."""
    if len(lines) < 2:
        raise AtError(f"+CMGR answer without a PDU: {list(lines)!r}")
    values = _values(lines[0], "+CMGR")
    return _int(values[0], lines[0]) if values else 0, lines[1]


def parse_cmgl(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """PDU-mode ``AT+CMGL`` answer → ``[(index, stat, pdu hex), ...]``."""
    out = []
    for head, pdu in zip(lines[::2], lines[1::2], strict=False):
        values = _values(head, "+CMGL")
        if len(values) < 2:
            raise AtError(f"short +CMGL line: {head!r}")
        out.append((_int(values[0], head), _int(values[1], head), pdu))
    return out
