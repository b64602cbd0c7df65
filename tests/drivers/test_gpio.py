"""GPIO buttons and LEDs on gpiozero's mock pins: presses, holds and releases reach the
journal in order from gpiozero's thread, a door contact opens and closes, a busy pin is one
clear error, and each LED state shows as the guard sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from waiting import apoll_until

from drivers.gpio import GpioInputs
from gateway.config.schema import Device
from gateway.core.backoff import Backoff
from gateway.core.clock import SystemClock
from gateway.core.enums import LedState
from gateway.core.errors import HardwareError, JournalError
from gateway.core.events import EventDraft, EventType


class Journal:
    """An event sink that keeps what it was given, in order."""

    def __init__(self) -> None:
        self.drafts: list[EventDraft] = []

    async def record(self, draft: EventDraft) -> None:
        self.drafts.append(draft)

    async def record_many(self, drafts: list[EventDraft]) -> None:
        self.drafts.extend(drafts)

    def types(self, device: str) -> list[EventType]:
        return [d.type for d in self.drafts if d.device == device]


def button(dev_id: str = "b1", pin: int = 17, **kw: Any) -> Device:
    return Device(id=dev_id, ward="cap-cuu", room="P1", pin=pin, **kw)


def run(devices: list[Device], body: Callable[[GpioInputs, MockFactory, Journal],
                                                Awaitable[None]]) -> Journal:
    factory = MockFactory()
    journal = Journal()

    async def scenario() -> None:
        gpio = GpioInputs(devices, SystemClock(), pin_factory=factory)
        gpio.open()
        task = asyncio.create_task(gpio.run(journal))
        await asyncio.sleep(0)  # run() attaches its callbacks before its first await
        try:
            await body(gpio, factory, journal)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            gpio.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        factory.reset()
    return journal


def test_press_hold_release_reach_the_journal_in_order_from_another_thread() -> None:
    async def body(gpio: GpioInputs, factory: MockFactory, journal: Journal) -> None:
        pin = factory.pin(17)
        await asyncio.to_thread(pin.drive_low)  # pulled up: pressed connects it to GND
        await apoll_until(lambda: EventType.HOLD in journal.types("b1"), what="hold")
        await asyncio.to_thread(pin.drive_high)
        await apoll_until(lambda: EventType.RELEASE in journal.types("b1"), what="release")

    journal = run([button(hold_s=0.2)], body)
    assert journal.types("b1") == [EventType.PRESS, EventType.HOLD, EventType.RELEASE]


def test_a_door_contact_opens_and_closes_and_never_holds() -> None:
    async def body(gpio: GpioInputs, factory: MockFactory, journal: Journal) -> None:
        pin = factory.pin(22)
        await asyncio.to_thread(pin.drive_low)
        await apoll_until(lambda: journal.types("door"), what="open")
        await asyncio.sleep(0.3)  # past the hold time: a contact held open is no duress
        await asyncio.to_thread(pin.drive_high)
        await apoll_until(lambda: EventType.CLOSE in journal.types("door"), what="close")

    journal = run([button("door", 22, kind="door_contact", hold_s=0.1)], body)
    assert journal.types("door") == [EventType.OPEN, EventType.CLOSE]


def test_a_busy_pin_is_one_clear_error_naming_the_device_and_pin() -> None:
    factory = MockFactory()
    try:
        first = GpioInputs([button("b1", 17)], SystemClock(), pin_factory=factory)
        first.open()
        second = GpioInputs([button("b2", 17)], SystemClock(), pin_factory=factory)
        with pytest.raises(HardwareError, match=r"devices b2: GPIO pin 17"):
            second.open()
        first.close()
    finally:
        factory.reset()


def test_each_led_state_shows_as_the_guard_sees_it() -> None:
    async def body(gpio: GpioInputs, factory: MockFactory, journal: Journal) -> None:
        led = factory.pin(5)
        gpio.set_led("b1", LedState.RAISED)  # alarm received: blinking
        led.clear_states()
        await apoll_until(lambda: len({s.state for s in led.states}) == 2, what="blinking")
        for state in (LedState.ACKNOWLEDGED, LedState.ESCALATED, LedState.POLICE_ACKNOWLEDGED):
            gpio.set_led("b1", state)  # every later state: steadily on
            assert led.state and gpio.led("b1") == state
        gpio.set_led("b1", LedState.OFF)
        assert not led.state and gpio.led("b1") == LedState.OFF

    run([button(led_pin=5)], body)


def test_a_device_without_an_led_remembers_its_state() -> None:
    async def body(gpio: GpioInputs, factory: MockFactory, journal: Journal) -> None:
        gpio.set_led("b1", LedState.ESCALATED)
        assert gpio.led("b1") == LedState.ESCALATED and gpio.led("unknown") == LedState.OFF

    run([button()], body)


class RefusingJournal(Journal):
    """A journal that refuses the first ``refusals`` commits (a disk briefly full), or
    every one (``refusals=None``)."""

    def __init__(self, refusals: int | None) -> None:
        super().__init__()
        self.refusals = refusals
        self.refused = 0

    def _refuse(self) -> None:
        if self.refusals is None or self.refused < self.refusals:
            self.refused += 1
            raise JournalError("journal commit failed: database or disk is full")

    async def record(self, draft: EventDraft) -> None:
        self._refuse()
        await super().record(draft)

    async def record_many(self, drafts: list[EventDraft]) -> None:
        self._refuse()
        await super().record_many(drafts)


def press_once(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> BaseException | None:
    """Press b1 once into ``journal``; what ``run()`` ended with, if it ended."""
    monkeypatch.setattr("drivers.gpio.RECORD_RETRY", Backoff(first_s=0.01, cap_s=0.05))
    factory = MockFactory()

    async def scenario() -> BaseException | None:
        gpio = GpioInputs([button()], SystemClock(), pin_factory=factory)
        gpio.open()
        task = asyncio.create_task(gpio.run(journal))
        await asyncio.sleep(0)
        try:
            pin = factory.pin(17)
            await asyncio.to_thread(pin.drive_low)
            await apoll_until(lambda: task.done() or journal.drafts, 5,
                              what="the press journaled or the inputs stopped")
            return task.exception() if task.done() else None
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            gpio.close()

    try:
        return asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        factory.reset()


def test_a_press_the_journal_refuses_for_a_moment_is_retried_not_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    journal = RefusingJournal(refusals=2)
    assert press_once(journal, monkeypatch) is None, "a passing refusal stopped the inputs"
    assert journal.refused == 2 and journal.types("b1") == [EventType.PRESS]


def test_a_press_the_journal_keeps_refusing_stops_the_gateway(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a log line and a healthy-looking gateway: the input task ends with the
    reason, which stops the gateway (the supervisor) so systemd restarts it."""
    journal = RefusingJournal(refusals=None)
    failure = press_once(journal, monkeypatch)
    assert isinstance(failure, JournalError), failure
    assert "1 input event(s) could not be journaled" in str(failure)
    assert "disk is full" in str(failure) and journal.drafts == []
