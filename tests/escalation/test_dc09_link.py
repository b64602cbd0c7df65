"""The gateway's DC-09 sender against receivers we did not write.

pysiaalarm's own asyncio server (the receiver Home Assistant uses) decodes what the link
sends, plain and with each AES key size; the simulated ARC (pysiaalarm's parsing behind our
socket) shows NAKs, DUHs and silences. Backoff sleeps are injected, so retries cost no wall
time; the only real waits are bounded socket time-outs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import pytest
from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient

from gateway.core.clock import SystemClock
from gateway.escalation.dc09.codec import Identity, SiaEvent, crc16
from gateway.escalation.dc09.link import Dc09Link, Outcome, link_tests
from gateway.escalation.wire import RetryPolicy
from receiver.dc09 import PanelAccount
from simulator.arc import ArcServer

KEYS = {"plain": None, "aes128": b"0123456789ABCDEF", "aes192": b"0123456789ABCDEF01234567",
        "aes256": b"0123456789ABCDEF0123456789ABCDEF"}
ACCOUNT = "1A2B"
RUN_LIMIT_S = 20.0


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, RUN_LIMIT_S))  # type: ignore[arg-type]


class SkewedClock(SystemClock):
    """A gateway whose clock is ``skew_s`` seconds off."""

    def __init__(self, skew_s: float) -> None:
        self.skew_s = skew_s

    def wall(self) -> float:
        return super().wall() + self.skew_s


def make_link(port: int, key: bytes | None = None, **kwargs: Any) -> Dc09Link:
    kwargs.setdefault("policy", RetryPolicy(max_attempts=5, base_s=0.01, cap_s=0.05))
    kwargs.setdefault("timeout_s", 2.0)
    return Dc09Link("arc", "127.0.0.1", port, Identity(account=ACCOUNT, line="2", receiver="1F",
                                                       key=key), **kwargs)


PANIC = SiaEvent(code="PA", zone=5, area=1, text="Khoa Cấp cứu, phòng 105")


@pytest.mark.parametrize("name", list(KEYS))
def test_pysiaalarm_decodes_the_gateways_messages(name: str) -> None:
    key = KEYS[name]
    seen: list[Any] = []

    async def on_event(event: Any) -> None:
        seen.append(event)

    async def scenario() -> None:
        account = SIAAccount(ACCOUNT, key.decode() if key else None)
        client = SIAClient("127.0.0.1", 0, [account], on_event)
        await client.async_start()
        assert client.server is not None
        port = client.server.sockets[0].getsockname()[1]
        link = make_link(port, key)
        try:
            result = await link.deliver(17, PANIC)
            null = await link.attempt(18, None)
        finally:
            await client.async_stop()
        assert result.outcome == Outcome.DELIVERED and result.attempts == 1
        assert str(null.answer) == "ACK"

    run(scenario())
    panic, test = seen
    assert (panic.code, panic.ri, panic.sequence, panic.account) == ("PA", "1", "0017", ACCOUNT)
    assert panic.message == "005|AKhoa Cap cuu, phong 105"
    assert (panic.receiver, panic.line, panic.encrypted) == ("R1F", "L2", key is not None)
    assert abs(panic.timestamp.timestamp() - time.time()) < 30
    assert (test.message_type.value, test.sequence, test.code) == ("NULL", "0018", "RP")


def test_nak_with_a_time_stamp_is_resent_with_the_receivers_time_and_accepted() -> None:
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv", key=KEYS["aes128"])]).start()
    try:
        link = make_link(arc.port, KEYS["aes128"], clock=SkewedClock(-3600.0))
        result = run(link.deliver(42, PANIC))
        arrivals = arc.arrivals()
    finally:
        arc.stop()
    assert result.outcome == Outcome.DELIVERED and result.attempts == 1
    assert link.naks == 1 and abs(link.offset_s - 3600.0) < 5
    first, second = arrivals
    assert first.refusal is not None and "outside the accepted window" in first.refusal.reason
    assert second.message is not None and second.message.seq == 42 and second.answer == "ACK"
    assert second.message.sent_at is not None and abs(second.message.sent_at - time.time()) < 30


def test_receiver_down_is_retried_then_delivered() -> None:
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv")]).start()
    arc.stop()  # the port is known and now refuses connections
    reports: list[tuple[int, str, bool]] = []

    async def sleep(delay: float) -> None:
        if len(reports) == 2:
            await asyncio.to_thread(arc.start)  # the ARC comes back after two failures

    async def on_attempt(n: int, label: str, *, will_retry: bool, delay_s: float) -> None:
        reports.append((n, label, will_retry))

    try:
        result = run(make_link(arc.port, sleep=sleep).deliver(7, PANIC, on_attempt=on_attempt))
        messages = arc.messages("PA")
    finally:
        arc.stop()
    assert result.outcome == Outcome.DELIVERED and result.attempts == 3
    assert reports == [(1, "error: connection refused", True),
                       (2, "error: connection refused", True), (3, "ACK", False)]
    assert [m.seq for m in messages] == [7]


def test_duh_is_a_refusal_and_silence_is_retried() -> None:
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv")]).start()
    try:
        arc.answer("duh")
        refused = run(make_link(arc.port).deliver(1, PANIC))
        arc.answer("silence")
        link = make_link(arc.port, timeout_s=0.5)
        later = run(link.deliver(2, PANIC))
    finally:
        arc.stop()
    assert refused.outcome == Outcome.REFUSED and "DUH" in refused.detail
    assert later.outcome == Outcome.DELIVERED and later.attempts == 2
    assert link.failures == 0 and link.last_ok is not None


def test_attempts_run_out_and_a_deadline_is_kept() -> None:
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv")]).start()
    arc.stop()
    gave_up = run(make_link(arc.port).deliver(3, PANIC))
    assert gave_up.outcome == Outcome.GAVE_UP and gave_up.attempts == 5
    assert "connection refused" in gave_up.detail
    late = run(make_link(arc.port, policy=RetryPolicy(max_attempts=None, base_s=0.2,
                                                      jitter=0)).deliver(3, PANIC, deadline_s=0.3))
    assert late.outcome == Outcome.LATE and late.attempts == 2


def test_an_answer_for_another_sequence_or_unencrypted_is_not_an_ack() -> None:
    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r")
        body = b'"ACK"0099L2#1A2B[]'  # a good CRC, but for seq 0099
        writer.write(b"\n%04X%04X%s\r" % (crc16(body), len(body), body))
        await writer.drain()
        writer.close()

    async def scenario() -> tuple[Any, Any]:
        server = await asyncio.start_server(liar, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            wrong_seq = await make_link(port).attempt(5, PANIC)
            unencrypted = await make_link(port, KEYS["aes256"]).attempt(99, PANIC)
        finally:
            server.close()
        return wrong_seq, unencrypted

    wrong_seq, unencrypted = run(scenario())
    assert wrong_seq.answer is None and "sequence 0099, not 0005" in str(wrong_seq.error)
    assert unencrypted.answer is None and "unencrypted ACK" in str(unencrypted.error)


def test_link_tests_arrive_at_the_interval_and_failures_are_reported() -> None:
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv", key=KEYS["aes192"])]).start()
    results: list[tuple[bool, str]] = []
    pauses: list[float] = []
    seqs = iter(range(1, 100))
    done = asyncio.Event()

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(seconds)

    async def next_seq() -> int:
        return next(seqs)

    async def on_result(*, ok: bool, detail: str) -> None:
        results.append((ok, detail))
        if len(results) == 3:
            await asyncio.to_thread(arc.stop)
        if len(results) == 4:
            done.set()

    async def scenario() -> None:
        link = make_link(arc.port, KEYS["aes192"], timeout_s=1.0)
        task = asyncio.create_task(link_tests(link, 0.05, next_seq, on_result, sleep=pause))
        try:
            await done.wait()
        finally:
            task.cancel()

    run(scenario())
    nulls = [m for m in arc.messages() if m.kind == "NULL"]
    assert [m.seq for m in nulls] == [1, 2, 3] and all(m.encrypted for m in nulls)
    assert [ok for ok, _ in results] == [True, True, True, False]
    assert "link test 0004: error: connection refused" == results[3][1]
    assert len(pauses) >= 4 and set(pauses) == {0.05}

