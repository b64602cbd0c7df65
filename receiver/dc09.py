"""A DC-09 listener (SPEC §7): alarm panels and gateways reporting over TCP.

The parsing and the answers are pysiaalarm's (CRC, AES-CBC, the time-stamp window, the
DC-03 and Contact ID code tables), an implementation we did not write. The socket is ours,
because pysiaalarm's own server writes the ``ACK`` before its callback runs, and an alarm
must be committed before it is acknowledged: here the handler's
:meth:`Dc09Handler.received` returns (committed) before the answer is written; if it
raises, no answer goes out and the panel sends again.

A line that is not a DC-09 message, has a bad CRC, names an unknown account, does not
decrypt with the account's key or carries an unknown code is a :class:`Dc09Refusal` and
nothing else: handed to :meth:`Dc09Handler.refused` (the receiver journals it), answered
as pysiaalarm answers it (``NAK``, ``DUH``, or nothing for a bad CRC).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pysiaalarm import SIAAccount
from pysiaalarm.errors import EventFormatError, NoAccountError
from pysiaalarm.event import NAKEvent, SIAEvent
from pysiaalarm.utils import ResponseType

log = logging.getLogger(__name__)

MAX_LINE = 2048  # bytes: a DC-09 message is a few hundred
IDLE_TIMEOUT_S = 60.0  # a connection silent this long is closed
MAX_CONNECTIONS = 256
TIMEBAND_S = (40, 20)  # accepted time-stamp skew, seconds behind / ahead (DC-09's default)
_ZONE_TEXT = re.compile(r"(?P<zone>\d{0,4})(?P<rest>.*)", re.S)


class Answer(StrEnum):
    """What to answer an accepted message: pysiaalarm's own answer (``ACK``), or a fault
    a simulated receiving centre was told to show."""

    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"
    SILENCE = "silence"


@dataclass(frozen=True, kw_only=True, slots=True)
class PanelAccount:
    """One account the listener accepts: 3–16 hex digits, the AES key (16/24/32 bytes) or
    None for plain messages, and the site it belongs to."""

    account: str
    site: str
    key: bytes | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Dc09Message:
    """A message pysiaalarm accepted. ``kind`` is ``SIA-DCS``, ``ADM-CID`` or ``NULL``;
    ``code`` the SIA code (a Contact ID event mapped to one); ``zone`` the zone or point;
    ``text`` the ASCII text the sender added; ``sent_at`` its time stamp (unix s) if any."""

    site: str
    account: str
    kind: str
    seq: int
    code: str
    zone: int | None
    area: str | None
    text: str
    encrypted: bool
    sent_at: float | None
    peer: str
    raw: str = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Dc09Refusal:
    """A line refused at the door: why, from where, which account it claimed."""

    reason: str
    peer: str
    account: str | None = None
    excerpt: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "remote": self.peer, "account": self.account,
                "excerpt": self.excerpt}


class Dc09Handler(Protocol):
    """Where the listener hands what arrived."""

    async def received(self, message: Dc09Message) -> Answer:
        """Commit ``message`` (return only once it is durable) and say what to answer."""
        ...

    async def refused(self, refusal: Dc09Refusal) -> None: ...


class Dc09Listener:
    """The TCP server: one line per message, any number of messages per connection."""

    def __init__(self, accounts: list[PanelAccount], handler: Dc09Handler, *,
                 host: str = "127.0.0.1", port: int = 0,
                 timeband_s: tuple[int, int] | None = TIMEBAND_S,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.host = host
        self.port = port
        self._handler = handler
        self._sites = {a.account.upper(): a.site for a in accounts}
        self._accounts = {a.account.upper(): _sia_account(a, timeband_s) for a in accounts}
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.counts: Counter[str] = Counter()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("dc09 listening on %s:%d (%d accounts)", self.host, self.port,
                 len(self._accounts))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            tasks = list(self._connections)
            for writer in self._connections.values():
                writer.close()  # the reader sees EOF and the connection ends by itself
            _, late = await asyncio.wait(tasks, timeout=2.0) if tasks else (set(), set())
            for task in late:
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def health(self) -> dict[str, Any]:
        return {"listen": f"{self.host}:{self.port}", "connections": len(self._connections),
                **dict(self.counts)}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = _peer(writer)
        if len(self._connections) >= MAX_CONNECTIONS:
            self.counts["connections_refused"] += 1
            writer.close()
            return
        self._connections[task] = writer
        try:
            while True:
                line = await self._next_line(reader, peer)
                if line is None:
                    break
                if line:
                    answer = await self.handle_line(line, peer)
                    if answer:
                        writer.write(answer)
                        await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _next_line(self, reader: asyncio.StreamReader, peer: str) -> bytes | None:
        """The next ``<CR>``-terminated line; None when the connection should end."""
        try:
            async with asyncio.timeout(self.idle_timeout_s):
                return (await reader.readuntil(b"\r")).strip(b"\r\n\x00 ")
        except (asyncio.IncompleteReadError, TimeoutError):
            return None
        except asyncio.LimitOverrunError:
            await self._refuse(Dc09Refusal(reason=f"line over {MAX_LINE} bytes", peer=peer))
            return None

    async def handle_line(self, line: bytes, peer: str) -> bytes:
        """Parse one line with pysiaalarm; commit it or refuse it; return the answer bytes."""
        self.counts["lines"] += 1
        text = line.decode("ascii", errors="replace")
        try:
            event = SIAEvent.from_line(text, self._accounts)
        except NoAccountError:
            return await self._refuse(Dc09Refusal(
                reason="encrypted message for an account without a key (unknown account?)",
                peer=peer, account=_claimed(text), excerpt=text[:80]), nak=True)
        except (EventFormatError, ValueError) as exc:
            return await self._refuse(Dc09Refusal(
                reason=_malformed(text, exc), peer=peer, account=_claimed(text),
                excerpt=text[:80]), nak=True)
        problem = _problem(event, text)
        if problem is not None:
            refusal = Dc09Refusal(reason=problem, peer=peer, account=event.account,
                                  excerpt=text[:80])
            await self._refuse(refusal)
            return b"" if problem.startswith("CRC") else _answer_bytes(event)
        message = _message(event, self._sites[str(event.account).upper()], peer, text)
        try:
            verdict = await self._handler.received(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not stored: no answer, the panel sends it again
            self.counts["not_stored"] += 1
            log.error("event=dc09_not_stored account=%s seq=%d error=%r", message.account,
                      message.seq, str(exc))
            return b""
        self.counts[f"answered_{verdict}"] += 1
        return _override(event, verdict)

    async def _refuse(self, refusal: Dc09Refusal, nak: bool = False) -> bytes:
        self.counts["refused"] += 1
        log.warning("event=dc09_refused remote=%s account=%s reason=%r", refusal.peer,
                    refusal.account, refusal.reason)
        await self._handler.refused(refusal)
        return NAKEvent().create_response() if nak else b""


def _sia_account(a: PanelAccount, timeband_s: tuple[int, int] | None) -> SIAAccount:
    """pysiaalarm takes the key as text and uses its bytes as the AES key."""
    if a.key is None or a.key.isascii():
        return SIAAccount(a.account.upper(), a.key.decode("ascii") if a.key else None,
                          allowed_timeband=timeband_s)
    account = SIAAccount(a.account.upper(), None, allowed_timeband=timeband_s)
    account.key_b = a.key
    return account


def _problem(event: SIAEvent, text: str) -> str | None:
    """Why pysiaalarm would not ACK ``event`` (or we would not), or None."""
    if not event.valid_message:
        return f"CRC mismatch (sent {event.msg_crc}, computed {event.calc_crc})"
    if event.sia_account is None:
        return f"unknown account {event.account}"
    if event.encrypted and event.content is not None and event.encrypted_content is not None \
            and len(event.content) * 2 != len(event.encrypted_content):
        return "does not decrypt with the account's key"
    if event.encrypted and event.timestamp is None:
        return "encrypted message without a time stamp"
    if event.sia_account.encrypted and not event.encrypted:
        return "plain message for an account that has a key"
    response = event.response
    if response == ResponseType.DUH:
        return f"unknown code {event.code!r}"
    if response == ResponseType.NAK:
        return f"time stamp {event.timestamp} outside the accepted window"
    return None


def _message(event: SIAEvent, site: str, peer: str, text: str) -> Dc09Message:
    kind = getattr(event.message_type, "value", str(event.message_type))
    zone, rest = _zone_text(event, kind)
    stamp = event.timestamp if isinstance(event.timestamp, datetime) else None
    return Dc09Message(
        site=site, account=str(event.account).upper(), kind=kind,
        seq=int(event.sequence or 0), code=str(event.code), zone=zone,
        area=event.ri if kind != "ADM-CID" else event.partition, text=rest,
        encrypted=bool(event.encrypted), sent_at=stamp.timestamp() if stamp else None,
        peer=peer, raw=text)


def _zone_text(event: SIAEvent, kind: str) -> tuple[int | None, str]:
    """SIA-DCS puts the zone right after the code and text in ``|A…`` or ``^…^``;
    Contact ID carries the zone in its own field."""
    if kind == "ADM-CID":
        return (int(event.ri) if event.ri and event.ri.isdigit() else None), ""
    m = _ZONE_TEXT.match(event.message or "")
    assert m is not None
    rest = m["rest"].replace("|A", " ").replace("^", " ").strip(" |")
    return (int(m["zone"]) if m["zone"] else None), " ".join(rest.split())


def _override(event: SIAEvent, verdict: Answer) -> bytes:
    if verdict == Answer.ACK:
        return _answer_bytes(event)
    if verdict == Answer.NAK:
        return NAKEvent().create_response()
    if verdict == Answer.DUH:
        body = (f'"DUH"{event.sequence}{event.receiver or ""}{event.line or ""}'
                f'#{event.account}[]')
        return f"\n{SIAEvent._crc_calc(body)}{len(body):04X}{body}\r".encode("ascii")
    return b""


def _answer_bytes(event: SIAEvent) -> bytes:
    answer: bytes = event.create_response()
    return answer if answer.strip() else b""


def _claimed(text: str) -> str | None:
    m = re.search(r"#([0-9A-Fa-f]{3,16})\[", text)
    return m.group(1).upper() if m else None


def _malformed(text: str, exc: Exception) -> str:
    if not text.isprintable():
        return "not a DC-09 message (unprintable bytes)"
    if text[8:10] == '"*' and "Parse content" in str(exc):
        return "does not decrypt with the account's key (wrong key?) or is malformed"
    return f"malformed: {str(exc).split(',')[0][:120]}"


def _peer(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    return f"{info[0]}:{info[1]}" if isinstance(info, tuple) else str(info)


def utc(unix_s: float | None) -> str | None:
    """RFC 3339 of a message's time stamp, for display."""
    if unix_s is None:
        return None
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
