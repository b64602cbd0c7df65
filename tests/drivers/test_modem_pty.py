"""The modem driver against the simulated modem over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import functools
import unicodedata
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from waiting import apoll_until

from drivers.modem import Modem, ModemError, ModemSettings
from gateway.core.clock import ManualClock
from simulator.modem import ModemSimulator, SentSms

VIETNAMESE = (
    "[DIỄN TẬP] Báo động khẩn cấp: Bệnh viện Đa khoa Xanh Pôn, Khoa Cấp cứu, phòng tiếp "
    "đón số 3, lúc 23:41. Nhân viên y tế bị hành hung. Trả lời OK 0427 để xác nhận. Mã 0427."
)
Inbox = asyncio.Queue[tuple[str, str, float]]


def aio(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop, bounded (no pytest-asyncio in this project)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 30))

    return run


def fast(port: str, poll_s: float = 0.2) -> ModemSettings:
    return ModemSettings(
        port, poll_s=poll_s, command_timeout_s=0.5, send_timeout_s=3.0,
        reopen_min_s=0.05, reopen_max_s=0.3,
    )  # fmt: skip


@pytest.fixture
def sim() -> Iterator[ModemSimulator]:
    modem = ModemSimulator(rssi=20)
    modem.start()
    yield modem
    modem.stop()



async def stop(task: asyncio.Task[None]) -> None:
    """Cancel ``run()``; it must end promptly (a swallowed cancellation would hang here)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "run() did not stop when cancelled"
    assert task.cancelled()


@asynccontextmanager
async def running(
    port: str,
    inbox: Inbox | None = None,
    clock: ManualClock | None = None,
    poll_s: float = 0.2,
) -> AsyncIterator[Modem]:
    async def on_sms(sender: str, text: str, received_at: float, *, numeric: bool) -> None:
        if inbox is not None:
            inbox.put_nowait((sender, text, received_at))

    modem = Modem(fast(port, poll_s), on_sms=on_sms, clock=clock)
    task = asyncio.create_task(modem.run())
    try:
        yield modem
        assert not task.done(), "run() must never return or raise"
    finally:
        await stop(task)


def ready(modem: Modem) -> Callable[[], bool]:
    return lambda: modem.status()["present"] and modem.status()["state"] == "ok"


def status(modem: Modem) -> dict[str, Any]:
    return modem.status()


@aio
async def test_start_up_sequence_and_status(sim: ModemSimulator) -> None:
    async with running(sim.port) as modem:
        await apoll_until(ready(modem))
        # the first poll goes on after the modem is ready (registered): wait for all of it
        polled = {"AT+CREG?", "AT+CEREG?", "AT+CSQ", "AT+CMGL=4"}
        await apoll_until(lambda: polled <= set(sim.commands()))
        assert sim.commands()[:6] == [
            "AT", "ATE0", "AT+CMEE=2", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0", "AT+CPIN?"]  # fmt: skip
        await apoll_until(lambda: status(modem)["rssi_dbm"] is not None)
        s = status(modem)
        assert (s["sim"], s["registered"], s["rat"], s["rssi_dbm"]) == ("READY", True, "lte", -73)
        sim.set_rssi(99)
        await apoll_until(lambda: status(modem)["rssi_dbm"] is None)


@aio
async def test_send_vietnamese_and_read_it_back(sim: ModemSimulator) -> None:
    async with running(sim.port) as modem:
        await apoll_until(ready(modem))
        refs = await asyncio.wait_for(modem.send_sms("0912 345 678", VIETNAMESE), 10)
        nfc = unicodedata.normalize("NFC", VIETNAMESE)
        assert len(refs) == 3 and len(set(refs)) == 3
        assert sim.sent_messages() == [SentSms("+84912345678", nfc, 3)]
        await asyncio.wait_for(modem.send_sms("+84912345678", "Test 5€ [ok]"), 10)
        assert sim.sent_messages()[-1] == SentSms("+84912345678", "Test 5€ [ok]", 1)
        assert status(modem)["sent"] == 2


@aio
async def test_cms_error_then_success(sim: ModemSimulator) -> None:
    async with running(sim.port) as modem:
        await apoll_until(ready(modem))
        sim.fail_sends(1, code=500)
        with pytest.raises(ModemError) as caught:
            await asyncio.wait_for(modem.send_sms("+84912345678", "Báo động"), 10)
        assert (caught.value.kind, caught.value.code) == ("cms", 500)
        assert "unknown error" in str(caught.value).lower()
        s = status(modem)
        assert s["state"] == "trouble" and "500" in s["last_error"]
        assert sim.sent_messages() == []
        await asyncio.wait_for(modem.send_sms("+84912345678", "Báo động"), 10)
        assert sim.sent_messages() == [SentSms("+84912345678", "Báo động", 1)]
        assert status(modem)["state"] == "ok"


@aio
async def test_lost_registration_is_reported(sim: ModemSimulator) -> None:
    async with running(sim.port) as modem:
        await apoll_until(ready(modem))
        sim.set_registration(2, 0)
        await apoll_until(lambda: not status(modem)["registered"])
        assert status(modem)["trouble"] == ["not registered"]
        with pytest.raises(ModemError) as caught:
            await asyncio.wait_for(modem.send_sms("+84912345678", "x"), 10)
        assert caught.value.code == 500
        sim.set_registration(0, 7)  # LTE, SMS only, roaming: enough for SMS
        await apoll_until(lambda: status(modem)["registered"])
        assert status(modem)["roaming"] is True
        await asyncio.wait_for(modem.send_sms("+84912345678", "x"), 10)
        assert status(modem)["state"] == "ok"


@aio
async def test_no_sim(sim: ModemSimulator) -> None:
    sim.set_sim(False)
    async with running(sim.port) as modem:
        await apoll_until(lambda: status(modem)["present"] and status(modem)["sim"] is not None)
        s = status(modem)
        assert s["state"] == "trouble" and s["sim"] == "SIM not inserted"
        assert not s["registered"]


@aio
async def test_silent_modem_is_trouble_and_recovers(sim: ModemSimulator) -> None:
    inbox: Inbox = asyncio.Queue()
    async with running(sim.port, inbox) as modem:
        await apoll_until(ready(modem))
        sim.set_silent(True)
        await apoll_until(lambda: not status(modem)["present"])
        assert status(modem)["state"] == "trouble"
        with pytest.raises(ModemError):
            await asyncio.wait_for(modem.send_sms("+84912345678", "x"), 10)
        sim.deliver_sms("0987654321", "OK 0427")  # stored; the +CMTI is never heard
        sim.set_silent(False)
        await apoll_until(ready(modem))
        assert sim.commands().count("ATE0") >= 2
        sender, text, _ = await asyncio.wait_for(inbox.get(), 5)
        assert (sender, text) == ("+84987654321", "OK 0427")


@aio
async def test_incoming_sms_reaches_callback_then_is_deleted(sim: ModemSimulator) -> None:
    inbox: Inbox = asyncio.Queue()
    clock = ManualClock()
    async with running(sim.port, inbox, clock) as modem:
        await apoll_until(ready(modem))
        [index] = sim.deliver_sms("0912 345 678", "ôk 0427")
        assert await asyncio.wait_for(inbox.get(), 5) == ("+84912345678", "ôk 0427", clock.wall())
        await apoll_until(lambda: sim.stored() == {})
        assert f"AT+CMGR={index}" in sim.commands() and f"AT+CMGD={index}" in sim.commands()
        assert status(modem)["received"] == 1


@aio
async def test_cmti_inside_another_answer_is_not_lost(sim: ModemSimulator) -> None:
    inbox: Inbox = asyncio.Queue()
    async with running(sim.port, inbox, poll_s=60) as modem:  # no AT+CMGL poll to help
        await apoll_until(ready(modem))
        await asyncio.wait_for(modem.send_sms("+84912345678", "x"), 10)  # after the first poll
        [index] = sim.deliver_sms("+84912345678", "OK 0427", during_next_command=True)
        await asyncio.wait_for(modem.send_sms("+84912345678", "y"), 10)
        sender, text, _ = await asyncio.wait_for(inbox.get(), 5)
        assert (sender, text) == ("+84912345678", "OK 0427")
        assert f"AT+CMGR={index}" in sim.commands()  # read because of its +CMTI, not a poll


@aio
async def test_long_incoming_message_is_joined(sim: ModemSimulator) -> None:
    inbox: Inbox = asyncio.Queue()
    async with running(sim.port, inbox) as modem:
        await apoll_until(ready(modem))
        assert len(sim.deliver_sms("Viettel", VIETNAMESE)) == 3
        sender, text, _ = await asyncio.wait_for(inbox.get(), 5)
        assert (sender, text) == ("Viettel", unicodedata.normalize("NFC", VIETNAMESE))
        await apoll_until(lambda: sim.stored() == {})
        assert inbox.empty()


@aio
async def test_failing_handler_sees_the_message_again(sim: ModemSimulator) -> None:
    calls: list[str] = []

    def on_sms(sender: str, text: str, received_at: float, *, numeric: bool) -> None:
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("journal busy")

    modem = Modem(fast(sim.port), on_sms=on_sms)
    task = asyncio.create_task(modem.run())
    try:
        await apoll_until(ready(modem))
        sim.deliver_sms("+84912345678", "OK 0427")
        await apoll_until(lambda: len(calls) >= 2 and sim.stored() == {})
        assert calls[:2] == ["OK 0427", "OK 0427"]
    finally:
        await stop(task)


@aio
async def test_absent_port_is_trouble_not_a_crash() -> None:
    async with running("/dev/does-not-exist-modem") as modem:
        await apoll_until(lambda: "cannot open" in (status(modem)["last_error"] or ""))
        await apoll_until(lambda: status(modem)["reopens"] >= 2)
        s = status(modem)
        assert (s["present"], s["state"]) == (False, "trouble")
        with pytest.raises(ModemError) as caught:
            await modem.send_sms("+84912345678", "x")
        assert caught.value.kind == "offline"


def start_up_done_at(commands: list[str]) -> int:
    """Index of the last start-up command in the simulator's log."""
    return commands.index("AT+CNMI=2,1,0,0,0")


@aio
async def test_send_before_start_up_waits_for_it(sim: ModemSimulator) -> None:
    async with running(sim.port) as modem:  # run() has not even opened the port yet
        assert not status(modem)["present"]
        refs = await asyncio.wait_for(modem.send_sms("+84912345678", "Báo động"), 10)
        assert len(refs) == 1
        assert sim.sent_messages() == [SentSms("+84912345678", "Báo động", 1)]
        commands = sim.commands()
        first_send = next(i for i, c in enumerate(commands) if c.startswith("AT+CMGS="))
        assert commands[:5] == ["AT", "ATE0", "AT+CMEE=2", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0"]
        assert first_send > start_up_done_at(commands)
        log = sim.command_log()  # the same lines, timed as the simulator read them
        assert [line for _, line in log] == commands
        assert [t for t, _ in log] == sorted(t for t, _ in log)
        assert status(modem)["sent"] == 1


@aio
async def test_send_is_offline_when_start_up_does_not_finish_in_time(
        sim: ModemSimulator) -> None:
    sim.set_silent(True)  # hung from power-on: the start-up sequence never completes
    settings = ModemSettings(sim.port, command_timeout_s=0.2, send_timeout_s=0.5,
                             reopen_min_s=0.05, reopen_max_s=0.1)
    modem = Modem(settings)
    task = asyncio.create_task(modem.run())
    try:
        with pytest.raises(ModemError) as caught:
            async with asyncio.timeout(5):  # the driver's own bound is 0.5 s
                await modem.send_sms("+84912345678", "x")
        assert caught.value.kind == "offline" and "not ready" in str(caught.value)
        assert not [c for c in sim.commands() if c.startswith("AT+CMGS")]
        assert status(modem)["send_failures"] == 1
        sim.set_silent(False)
        await apoll_until(ready(modem))
        await asyncio.wait_for(modem.send_sms("+84912345678", "y"), 10)
        assert sim.sent_messages() == [SentSms("+84912345678", "y", 1)]
    finally:
        await stop(task)


@aio
async def test_a_message_is_handed_over_once_while_its_handler_is_slow(
        sim: ModemSimulator) -> None:
    """A reply being journaled (slowly, on a loaded Pi) is still on the SIM: the AT+CMGL poll
    that lists it meanwhile must not hand it over a second time (a police reply twice)."""
    calls: list[str] = []
    journaled = asyncio.Event()  # the handler returns only when the test says so

    async def on_sms(sender: str, text: str, received_at: float, *, numeric: bool) -> None:
        calls.append(text)
        await journaled.wait()

    modem = Modem(fast(sim.port), on_sms=on_sms)
    task = asyncio.create_task(modem.run())
    try:
        await apoll_until(ready(modem))
        sim.deliver_sms("+84912345678", "OK 0427")
        await apoll_until(lambda: calls)
        polls = sim.commands().count("AT+CMGL=4")  # two polls list it while it is handled
        await apoll_until(lambda: sim.commands().count("AT+CMGL=4") >= polls + 2)
        journaled.set()
        await apoll_until(lambda: sim.stored() == {})
        assert calls == ["OK 0427"]
    finally:
        await stop(task)
