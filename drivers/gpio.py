"""GPIO buttons and LEDs through gpiozero: one input device per configured GPIO device.

gpiozero calls back from lgpio's thread on a Pi (and synchronously in the caller's thread
under MockFactory), so a callback only stamps the time and hands the edge to the event loop
with ``call_soon_threadsafe``; debounce and hold run there (:mod:`drivers.debounce`). The pin
factory is an argument: ``MockFactory`` in tests and simulation, the default (lgpio) on a Pi.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from drivers.debounce import Debouncer, Transition
from gateway.core.backoff import Backoff
from gateway.core.enums import LedState
from gateway.core.errors import HardwareError, JournalError
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, EventSink, GpioDevice

log = logging.getLogger(__name__)

#: pauses between tries of a commit the journal refused (0.2 s doubling: 6.2 s in all over
#: ``RECORD_TRIES``), before the gateway stops
RECORD_RETRY = Backoff(first_s=0.2, cap_s=4.0)
RECORD_TRIES = 6


class GpioJournalError(JournalError):
    """Button presses the journal kept refusing: the gateway must stop, not drop them."""

_KIND_EVENTS = {
    "door_contact": {"press": EventType.OPEN, "release": EventType.CLOSE},
}


class GpioInputs:
    """Implements :class:`~gateway.core.ports.InputSource` and :class:`~gateway.core.ports.Indicator`."""

    name = "gpio"

    def __init__(self, devices: Sequence[GpioDevice], clock: Clock, pin_factory: Any = None) -> None:
        self._devices = [d for d in devices if d.input == "gpio"]
        self._clock = clock
        self._factory = pin_factory
        self._inputs: dict[str, Any] = {}
        self._leds: dict[str, Any] = {}
        self._led_state: dict[str, int] = {}
        self._debouncers: dict[str, Debouncer] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: EventSink | None = None
        self._drafts: list[EventDraft] = []  # debounced transitions waiting for the journal
        self._wake = asyncio.Event()
        self.edges = 0

    def open(self) -> None:
        """Claim every pin now, so a busy pin is one clear error before anything starts."""
        from gpiozero import LED, DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        for dev in self._devices:
            try:
                self._inputs[dev.id] = DigitalInputDevice(
                    dev.pin, pull_up=dev.pull_up, active_state=dev.active_state,
                    bounce_time=None, pin_factory=self._factory,
                )
                if dev.led_pin is not None:
                    self._leds[dev.id] = LED(dev.led_pin, pin_factory=self._factory)
            except (GPIOZeroError, OSError) as exc:
                self.close()
                raise HardwareError(f"devices {dev.id}: GPIO pin {dev.pin}: {exc}") from exc
            self._debouncers[dev.id] = Debouncer(
                dev.bounce_ms / 1000, dev.hold_s, pressed=bool(self._inputs[dev.id].value)
            )

    def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        for device in [*self._inputs.values(), *self._leds.values()]:
            device.close()
        self._inputs.clear()
        self._leds.clear()

    async def run(self, sink: EventSink) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        for dev_id, device in self._inputs.items():
            device.when_activated = self._callback(dev_id, pressed=True)
            device.when_deactivated = self._callback(dev_id, pressed=False)
        self._wake = asyncio.Event()
        try:
            await self._record_forever(sink)
        finally:
            for device in self._inputs.values():
                device.when_activated = device.when_deactivated = None

    async def _record_forever(self, sink: EventSink) -> None:
        """Commit transitions in order, everything waiting at once in one transaction: one
        task for all edges (not one per edge), and a burst costs one commit, not one each."""
        record_many = getattr(sink, "record_many", None)
        while True:
            await self._wake.wait()
            self._wake.clear()
            drafts, self._drafts = self._drafts, []
            if not drafts:
                continue
            await self._commit(sink, record_many, drafts)

    async def _commit(self, sink: EventSink, record_many: Any,
                      drafts: list[EventDraft]) -> None:
        """Commit ``drafts`` (oldest first), retrying a journal that refuses them for
        :data:`RECORD_RETRY`. A press the journal cannot take must not be dropped with a
        log line while the gateway looks healthy: when the retries run out this raises, the
        supervisor journals the trouble where it can, says ``offline`` and exits, and
        systemd restarts the gateway. What committed before the failure stays committed."""
        pending = list(drafts)
        waited = 0.0
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                if len(pending) > 1 and record_many is not None:
                    await record_many(pending)
                    pending = []
                else:
                    while pending:
                        await sink.record(pending[0])
                        pending.pop(0)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("event=gpio_record_failed waiting=%d error=%r", len(pending), str(exc))
                if attempt == RECORD_TRIES:
                    raise GpioJournalError(
                        f"GPIO: {len(pending)} input event(s) could not be journaled for "
                        f"{waited:.0f} s: {exc}") from exc
                pause = RECORD_RETRY.ceiling_s(attempt)
                await asyncio.sleep(pause)
                waited += pause

    def _callback(self, dev_id: str, *, pressed: bool) -> Any:
        def on_edge() -> None:  # any thread: stamp and hand off, nothing else
            now = self._clock.monotonic()
            assert self._loop is not None
            self._loop.call_soon_threadsafe(
                functools.partial(self._edge, dev_id, pressed=pressed, at=now))

        return on_edge

    def _edge(self, dev_id: str, *, pressed: bool, at: float) -> None:
        self.edges += 1
        self._emit(dev_id, self._debouncers[dev_id].edge(pressed=pressed, now=at))
        self._arm(dev_id)

    def _tick(self, dev_id: str) -> None:
        self._timers.pop(dev_id, None)
        self._emit(dev_id, self._debouncers[dev_id].tick(self._clock.monotonic()))
        self._arm(dev_id)

    def _arm(self, dev_id: str) -> None:
        deadline = self._debouncers[dev_id].next_deadline()
        old = self._timers.pop(dev_id, None)
        if old is not None:
            old.cancel()
        if deadline is not None and self._loop is not None:
            delay = max(0.0, deadline - self._clock.monotonic())
            self._timers[dev_id] = self._loop.call_later(delay, self._tick, dev_id)

    def _emit(self, dev_id: str, transitions: list[Transition]) -> None:
        assert self._sink is not None
        kind = next(d.kind for d in self._devices if d.id == dev_id)
        for tr in transitions:
            mapping = _KIND_EVENTS.get(kind, {})
            etype = mapping.get(tr.kind, EventType(tr.kind))
            if kind == "door_contact" and tr.kind == "hold":
                continue
            self._drafts.append(EventDraft(etype, device=dev_id, value=tr.held_s))
            self._wake.set()

    # -- Indicator ---------------------------------------------------------------------------
    def set_led(self, device: str, led: int) -> None:
        """Show alarm progress on the device's LED (on for any state but idle)."""
        self._led_state[device] = led
        output = self._leds.get(device)
        if output is not None:
            if led == LedState.OFF:
                output.off()
            elif led == LedState.RAISED:
                output.blink(on_time=0.2, off_time=0.2)
            else:
                output.on()

    def led(self, device: str) -> int:
        return self._led_state.get(device, LedState.OFF)

    def pin_of(self, device: str) -> int | None:
        dev = next((d for d in self._devices if d.id == device), None)
        return dev.pin if dev else None

    def health(self) -> dict[str, Any]:
        return {"inputs": len(self._inputs), "edges": self.edges}
