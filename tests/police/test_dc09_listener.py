"""The receiver's DC-09 listener: pysiaalarm's parsing behind our socket.

A panel is played by raw TCP on 127.0.0.1 (messages built with the gateway's codec, then
broken on purpose). What a user checks: an alarm is committed before its ACK; a bad key,
a bad CRC, an unknown account or code, or bytes that are not DC-09 reach the handler as a
refusal and nothing else; the listener keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from gateway.escalation.dc09.codec import Identity, SiaEvent, crc16, encode
from receiver.dc09 import Answer, Dc09Listener, Dc09Message, Dc09Refusal, PanelAccount

KEY = b"0123456789ABCDEF0123456789ABCDEF"
PLAIN = PanelAccount(account="1A2B", site="bv-a")
SECRET = PanelAccount(account="C0FFEE", site="bv-b", key=KEY)
PANIC = SiaEvent(code="PA", zone=5, area=1, text="Khoa Cap cuu, phong 105")


class Book:
    """The handler: what arrived, in order with the answers the panel read."""

    def __init__(self, *, commit_delay_s: float = 0.0, fail_first: bool = False) -> None:
        self.log: list[str] = []
        self.messages: list[Dc09Message] = []
        self.refusals: list[Dc09Refusal] = []
        self.commit_delay_s = commit_delay_s
        self.fail_first = fail_first

    async def received(self, message: Dc09Message) -> Answer:
        if self.fail_first:
            self.fail_first = False
            self.log.append("store failed")
            raise OSError("disk full")
        await asyncio.sleep(self.commit_delay_s)  # a slow disk: the ACK must still wait
        self.messages.append(message)
        self.log.append("committed")
        return Answer.ACK

    async def refused(self, refusal: Dc09Refusal) -> None:
        self.refusals.append(refusal)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


async def exchange(port: int, lines: list[bytes], book: Book,
                   wait_s: float = 1.0) -> list[bytes]:
    """Send each line and read its answer (``b""`` when none came within ``wait_s``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for line in lines:
        writer.write(line)
        await writer.drain()
        try:
            async with asyncio.timeout(wait_s):
                answers.append(await reader.readuntil(b"\r"))
                book.log.append("answer")
        except TimeoutError:
            answers.append(b"")
    writer.close()
    return answers


async def serving(book: Book, coro_of_port: Any) -> Any:
    listener = Dc09Listener([PLAIN, SECRET], book)
    await listener.start()
    try:
        return await coro_of_port(listener.port)
    finally:
        await listener.stop()


def test_an_alarm_is_committed_before_its_ack_and_named_by_its_account() -> None:
    book = Book(commit_delay_s=0.05)
    frame = encode(Identity(account="C0FFEE", line="1", key=KEY), 12, PANIC, now=time.time())
    answers = run(serving(book, lambda port: exchange(port, [frame], book)))
    assert book.log == ["committed", "answer"]
    assert answers[0].startswith(b"\n") and b'"*ACK"0012' in answers[0]
    message = book.messages[0]
    assert (message.site, message.account, message.code, message.zone, message.area) == (
        "bv-b", "C0FFEE", "PA", 5, "1")
    assert message.text == "Khoa Cap cuu, phong 105" and message.encrypted
    assert book.refusals == []


def test_a_store_failure_sends_no_answer_and_the_resend_is_taken() -> None:
    book = Book(fail_first=True)
    frame = encode(Identity(account="1A2B"), 3, PANIC, now=time.time())
    answers = run(serving(book, lambda port: exchange(port, [frame, frame], book, 0.5)))
    assert answers[0] == b"" and b'"ACK"0003' in answers[1]
    assert book.log == ["store failed", "committed", "answer"]


def test_refusals_are_reported_and_nothing_else() -> None:
    now = time.time()
    good = encode(Identity(account="1A2B"), 1, PANIC, now=now)
    wrong_key = encode(Identity(account="C0FFEE", key=b"F" * 32), 2, PANIC, now=now)
    body = good[9:-1]
    bad_crc = b"\n0000" + good[5:]
    unknown = encode(Identity(account="BEEF"), 4, PANIC, now=now)
    odd_code = encode(Identity(account="1A2B"), 5, SiaEvent(code="QQ"), now=now)
    plain_for_keyed = encode(Identity(account="C0FFEE"), 6, PANIC, now=now)
    lines = [wrong_key, bad_crc, unknown, odd_code, plain_for_keyed,
             b"\x00\xff\xfe garbage \x1b[31m\r", b"GET / HTTP/1.1\r",
             b'\n%04X%04X%s\r' % (crc16(body), len(body), body.replace(b"SIA-DCS", b"FOO-BAR"))]
    book = Book()
    answers = run(serving(book, lambda port: exchange(port, [*lines, good], book)))
    assert [m.seq for m in book.messages] == [1]  # only the good one became a message
    reasons = [r.reason for r in book.refusals]
    assert len(reasons) == len(lines)
    assert "does not decrypt with the account's key" in reasons[0]
    assert reasons[1].startswith("CRC mismatch") and answers[1] == b""
    assert reasons[2] == "unknown account BEEF"
    assert reasons[3] == "unknown code 'QQ'" and b'"DUH"0005' in answers[3]
    assert reasons[4] == "plain message for an account that has a key"
    assert all(r.startswith(("malformed", "not a DC-09")) for r in reasons[5:])
    assert book.refusals[0].account == "C0FFEE" and b'"NAK"' in answers[0]
    assert b'"ACK"0001' in answers[-1]


def test_an_over_long_line_is_refused_and_the_connection_closed() -> None:
    book = Book()

    async def flood(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"A" * 10_000)
        await writer.drain()
        async with asyncio.timeout(5):
            rest = await reader.read()  # the listener closes the connection
        writer.close()
        return rest

    assert run(serving(book, flood)) == b""
    assert [r.reason for r in book.refusals] == ["line over 2048 bytes"]
