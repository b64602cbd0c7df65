"""The seams between the core and everything around it, as ``typing.Protocol``s.

The core (``gateway``) depends only on these; adapters (``drivers``, the MQTT and HTTP
adapters, the simulators) implement them. One file, so the whole shape is visible at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.core.events import Event, EventDraft


class Clock(Protocol):
    """Injected time. ``monotonic`` for durations, ``wall`` for timestamps (unix s)."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class GpioDevice(Protocol):
    """What the GPIO driver reads of a configured device (the config's ``[[devices]]`` entry
    satisfies it), so the driver needs no config import."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def input(self) -> str: ...
    @property
    def pin(self) -> int | None: ...
    @property
    def led_pin(self) -> int | None: ...
    @property
    def pull_up(self) -> bool | None: ...
    @property
    def active_state(self) -> bool | None: ...
    @property
    def bounce_ms(self) -> int: ...
    @property
    def hold_s(self) -> float: ...


class EventSink(Protocol):
    """Where input sources hand their events. ``record`` returns once the event is
    committed (durable), so an ACK or LED may follow it (SPEC §1)."""

    async def record(self, draft: EventDraft) -> Event: ...


class InputSource(Protocol):
    """A piece of hardware that produces events (GPIO inputs, the serial bus)."""

    name: str

    async def run(self, sink: EventSink) -> None:
        """Produce events until cancelled; survive hardware faults (retry, report trouble)."""
        ...

    def health(self) -> dict[str, Any]:
        """A small JSON-able dict for ``gateway/health``."""
        ...


class Indicator(Protocol):
    """Something that shows staff the alarm's progress: a node's LED, a GPIO LED.

    LED states (SPEC §2) are :class:`gateway.core.enums.LedState`: 0 idle, 1 alarm
    received, 2 security acknowledged, 3 police notified, 4 police acknowledged.
    """

    def set_led(self, device: str, led: int) -> None: ...


class EventProcessor(Protocol):
    """Runs on the event loop for every event about to be committed, in journal order.

    It may annotate the event (e.g. set ``alarm_id``) and return follow-ups that are
    committed in the same transaction: derived events and retained MQTT documents.
    It must be fast and must not block: it sits on the press-to-commit path.
    """

    def process(self, draft: EventDraft) -> ProcessResult: ...


class ProcessResult:
    """What a processor wants committed with the event it saw."""

    __slots__ = ("after_commit", "draft", "follow_ups", "kv", "retained")

    def __init__(
        self,
        draft: EventDraft,
        follow_ups: list[EventDraft] | None = None,
        retained: dict[str, Any] | None = None,
        kv: dict[str, Any] | None = None,
        after_commit: list[Callable[[], None]] | None = None,
    ) -> None:
        #: the event to commit, possibly annotated (e.g. with ``alarm_id``)
        self.draft = draft
        #: further events committed right after it, in order (e.g. ``alarm_state``)
        self.follow_ups = follow_ups or []
        #: retained MQTT documents by topic suffix (``alarm/<id>``); None deletes
        self.retained = retained or {}
        #: private durable state by key (``alarm:<id>``); None deletes
        self.kv = kv or {}
        #: called on the loop once the transaction is committed (LEDs, wake-ups)
        self.after_commit = after_commit or []


CommandHandler = Callable[[str, bytes, str], Awaitable[None]]
"""``(alarm_id, raw_payload, origin)``: a command from MQTT ``alarm/<id>/set`` or the console."""


class MqttCommandCallback(Protocol):
    """An ``alarm/<id>/set`` message as the MQTT link received it. ``retained`` is the
    message's retain flag: a broker replays retained messages on every (re)connect, so a
    retained command is never applied (SPEC §3)."""

    async def __call__(self, alarm_id: str, payload: bytes, *, retained: bool) -> None: ...


class SmsHandler(Protocol):
    """A received SMS as the modem hands it over: ``sender`` in E.164 (or the name an
    alphanumeric sender gave), ``received_at`` in unix seconds. ``numeric`` is False
    when the sender's type of address is not a phone number (alphanumeric, or any other
    non-numeric type): such a sender is never a configured number (SPEC §4)."""

    def __call__(self, sender: str, text: str, received_at: float, *,
                 numeric: bool) -> Awaitable[None] | None: ...


class FrameLike(Protocol):
    """A decoded serial-bus frame as the bus logic sees it (``drivers.frames.Frame`` fits)."""

    @property
    def node(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def value(self) -> int: ...
    @property
    def batt_mv(self) -> int: ...


class SmsSender(Protocol):
    """The modem as the dispatcher needs it: send one text, raise on failure."""

    async def send_sms(self, number: str, text: str) -> Any: ...


class KvJournal(Protocol):
    """The part of the journal durable counters need (the DC-09 sequences): read ``kv``
    documents by prefix, commit a ``gateway.journal.store.Batch``."""

    def kv_all(self, prefix: str) -> dict[str, Any]: ...

    async def commit(self, batch: Any) -> Any: ...
