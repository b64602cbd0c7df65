"""The call that wakes the officer: the driver against the simulated modem on a real pty.

Each outcome the network can give (answered, busy, no answer, rejected, refused to dial)
is played by the simulated modem with the result codes and ``+CLCC`` states a SIM7600
gives; a police reply that arrives while the phone rings is read at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from test_modem_pty import aio, fast, stop
from waiting import apoll_until as wait_until

from drivers.at import AtParser, Response, Urc
from drivers.modem import Modem
from drivers.voice import CallOutcome, CallTracker, parse_clcc
from simulator.modem import ModemSimulator

OFFICER = "+84901111111"


@pytest.fixture
def sim() -> Iterator[ModemSimulator]:
    modem = ModemSimulator()
    modem.start()
    yield modem
    modem.stop()


async def started(sim: ModemSimulator, inbox: list[tuple[str, str]] | None = None
                  ) -> tuple[Modem, asyncio.Task[None]]:
    async def on_sms(sender: str, text: str, at: float | None = None, *, numeric: bool) -> None:
        if inbox is not None:
            inbox.append((sender, text))

    modem = Modem(fast(sim.port), on_sms=on_sms)
    task = asyncio.create_task(modem.run())
    await wait_until(lambda: modem.status()["registered"])
    return modem, task


@pytest.mark.parametrize(("behaviour", "outcome"), [
    ("answer", CallOutcome.ANSWERED),
    ("busy", CallOutcome.BUSY),
    ("reject", CallOutcome.NO_CARRIER),
    ("network_no_answer", CallOutcome.NO_ANSWER),
])
def test_each_outcome_is_read_from_the_modem(sim: ModemSimulator, behaviour: str,
                                             outcome: CallOutcome) -> None:
    @aio
    async def run() -> None:
        sim.set_call_behaviour(behaviour, after_s=0.3)
        modem, task = await started(sim)
        try:
            result = await modem.call(OFFICER, ring_s=5)
        finally:
            await stop(task)
        assert result.outcome == outcome, result
        assert result.number == OFFICER and result.rang_s < 5
        [call] = sim.calls()
        assert call.number == OFFICER and call.outcome == behaviour
        assert sim.active_calls() == []  # nothing left up on the line
        if outcome == CallOutcome.ANSWERED:
            assert call.hung_up_by == "gateway"

    run()


def test_unanswered_rings_for_ring_s_then_the_gateway_hangs_up(sim: ModemSimulator) -> None:
    @aio
    async def run() -> None:
        sim.set_call_behaviour("ring")
        modem, task = await started(sim)
        try:
            result = await modem.call("0901111111", ring_s=1.2)
        finally:
            await stop(task)
        assert result.outcome == CallOutcome.NO_ANSWER and result.rang_s >= 1.2
        assert "hung up" in result.detail
        [call] = sim.calls()
        assert call.number == OFFICER and call.hung_up_by == "gateway"
        assert "ATD+84901111111;" in sim.commands()
        assert {"AT+CHUP", "AT+CLCC"} <= set(sim.commands())

    run()


def test_a_modem_without_network_refuses_to_dial(sim: ModemSimulator) -> None:
    @aio
    async def run() -> None:
        modem, task = await started(sim)
        sim.set_registration(0)
        try:
            result = await modem.call(OFFICER, ring_s=2)
        finally:
            await stop(task)
        assert result.outcome == CallOutcome.ERROR and "no network service" in result.detail
        assert sim.calls() == []

    run()


def test_a_reply_while_the_phone_rings_is_read_at_once(sim: ModemSimulator) -> None:
    @aio
    async def run() -> None:
        sim.set_call_behaviour("ring")
        inbox: list[tuple[str, str]] = []
        modem, task = await started(sim, inbox)
        try:
            call = asyncio.create_task(modem.call(OFFICER, ring_s=3))
            await wait_until(lambda: sim.active_calls() != [])
            sim.deliver_sms(OFFICER, "OK 3769")
            await wait_until(lambda: inbox == [(OFFICER, "OK 3769")], timeout=2)
            assert not call.done()  # still ringing, and the reply is already in
            sent = asyncio.create_task(modem.send_sms(OFFICER, "Đã nhận OK 3769"))
            await asyncio.wait_for(sent, 2)  # an SMS goes out during the call too
            result = await call
        finally:
            await stop(task)
        assert result.outcome == CallOutcome.NO_ANSWER
        assert [m.text for m in sim.sent_messages()] == ["Đã nhận OK 3769"]

    run()


def test_the_tracker_reads_urcs_and_clcc() -> None:
    lines = ['+CLCC: 1,0,3,0,0,"+84901111111",145', "+CLCC: 2,1,4,0,0,\"+8490\",145", "junk"]
    assert [(c.idx, c.outgoing, c.stat) for c in parse_clcc(lines)] == [(1, True, 3),
                                                                          (2, False, 4)]
    t = CallTracker()
    t.calls(parse_clcc(lines[:1]))
    t.urc(Urc("VOICE CALL", "BEGIN", "VOICE CALL: BEGIN"))
    assert t.outcome == CallOutcome.ANSWERED and t.up
    t = CallTracker()
    t.calls([])
    assert t.outcome is None  # a modem may list nothing for a moment after ATD
    t.calls([])
    assert t.outcome == CallOutcome.NO_CARRIER and not t.up


def test_the_parser_ends_atd_on_a_call_result_and_keeps_call_urcs_apart() -> None:
    parser = AtParser()
    parser.begin("ATD+84901111111;")
    [final] = parser.feed(b"\r\nBUSY\r\n")
    assert isinstance(final, Response) and final.final.kind == "BUSY"
    parser.begin("AT+CMGR=1")
    events: list[Any] = parser.feed(b"\r\nVOICE CALL: END: 000012\r\nNO CARRIER\r\n"
                                    b'+CMGR: 0,,20\r\n0791\r\nOK\r\n')
    urcs = [e.name for e in events if isinstance(e, Urc)]
    assert urcs == ["VOICE CALL", "NO CARRIER"]
    [answer] = [e for e in events if isinstance(e, Response)]
    assert answer.lines == ("+CMGR: 0,,20", "0791") and answer.final.ok
