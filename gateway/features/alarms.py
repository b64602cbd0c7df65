"""The alarm feature, wired into the gateway by one line in :mod:`gateway.features`.

:func:`build_alarms` adds the alarm engine to the recorder, the command path (MQTT, the
console's ``command_handler``, the control socket's ``drill``), the police-timer task, and
the escalation dispatcher with its channels: the HTTP hotline, the LTE modem and the
DC-09 receiving centres (:mod:`gateway.features.dc09`). It only
constructs and registers; the gateway's supervisor runs the tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from gateway.alarms.commands import CommandService
from gateway.alarms.drill import drill_command
from gateway.alarms.engine import AlarmEngine
from gateway.config.schema import read_secret
from gateway.core.ports import Clock, EventSink
from gateway.escalation.dispatcher import CONSUMER, Dispatcher, reply_sink
from gateway.features.dc09 import dc09_lane

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


class AlarmTimers:
    """Drives :meth:`AlarmEngine.on_timer` from the loop: sleeps until the engine's next
    due time on the monotonic clock (woken early whenever an alarm changes) and records
    what is due. The wall clock plays no part in waiting, so a step of it either way
    neither stalls nor hastens the police."""

    def __init__(self, engine: AlarmEngine, sink: EventSink, clock: Clock) -> None:
        self._engine = engine
        self._sink = sink
        self._clock = clock
        self._event: asyncio.Event | None = None

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()

    async def run(self) -> None:
        self._event = asyncio.Event()
        while True:
            deadline = self._engine.next_due()
            now = self._clock.monotonic()
            if deadline is not None and deadline <= now:
                await self._fire(now)
                continue
            self._event.clear()
            timeout = None if deadline is None else deadline - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: see gateway.mqtt.link
                    await self._event.wait()

    async def _fire(self, now: float) -> None:
        """Record one due timer (the next loop turn takes the others)."""
        for draft in self._engine.on_timer(now)[:1]:
            try:
                await self._sink.record(draft)
            except asyncio.CancelledError:
                raise
            except Exception:  # the journal refused: try again shortly, never stop
                log.exception("event=alarm_timer_failed alarm=%s", draft.alarm_id)
                await asyncio.sleep(1.0)


async def build_alarms(gw: Gateway) -> None:
    """Register the alarm engine, commands, timers, drills and escalation."""
    config = gw.config
    engine = AlarmEngine(config, gw.clock, gw.journal.kv_all("alarm:"), gw.indicators,
                         documents=gw.journal.retained_all("alarm/"))
    gw.recorder.add_processor(engine)
    service = CommandService(engine, gw.recorder)
    gw.command_handler = service.handle
    gw.mqtt.on_command(service.on_mqtt)
    timers = AlarmTimers(engine, gw.recorder, gw.clock)
    engine.on_change = timers.wake
    gw.add_task(timers.run, name="alarm-timers")
    gw.control.register("drill", drill_command(config, engine, gw.recorder))
    http = _http_channel(gw)
    receivers = _receiver_channels(gw)
    modem = _modem(gw)
    if modem is not None:
        from gateway.features.modem_tools import register_modem_tools

        register_modem_tools(gw, modem)
    dc09 = dc09_lane(gw)
    dispatcher = Dispatcher(config, gw.journal, gw.recorder, engine, gw.clock, http, modem,
                            receivers=receivers,
                            dc09=dc09.runner if dc09 is not None else None)
    if dc09 is not None:
        dc09.attach(engine)
    gw.consumers.append(CONSUMER)
    gw.add_task(dispatcher.run, name="escalation")
    gw.health.add("hotline", _health(http, dispatcher))
    gw.health.add("modem", (lambda: _modem_health(modem)))
    gw.alarm_engine = engine  # for the console and tests
    gw.escalation = dispatcher
    _ack_pollers(gw, receivers)


def _http_channel(gw: Gateway) -> Any:
    from gateway.escalation.http import HttpChannel
    from gateway.escalation.wire import RetryPolicy

    cfg = gw.config.escalation.http
    if cfg is None:
        return None
    policy = RetryPolicy(max_attempts=cfg.max_attempts, base_s=cfg.retry_base_s,
                         cap_s=cfg.retry_cap_s)
    ca_file = gw.config.resolve(cfg.ca_file) if cfg.ca_file else None
    return HttpChannel.from_config(cfg, read_secret(gw.config, cfg.secret_file),
                                   ca_file=ca_file, clock=gw.clock, policy=policy)


def _receiver_channels(gw: Gateway) -> dict[str, tuple[str, Any]]:
    """URL (and drill URL) -> (trouble source, channel) of each ``[[escalation.receivers]]``:
    each police receiver its own secret, delivery state and trouble (SPEC §6)."""
    from gateway.core.redact import redact_url
    from gateway.escalation.http import HttpChannel
    from gateway.escalation.wire import RetryPolicy

    out: dict[str, tuple[str, Any]] = {}
    for cfg in gw.config.escalation.receivers:
        policy = RetryPolicy(max_attempts=cfg.max_attempts, base_s=cfg.retry_base_s,
                             cap_s=cfg.retry_cap_s)
        ca_file = gw.config.resolve(cfg.ca_file) if cfg.ca_file else None
        channel = HttpChannel.from_config(cfg, read_secret(gw.config, cfg.secret_file),
                                          ca_file=ca_file, clock=gw.clock, policy=policy)
        for url in filter(None, (cfg.url, cfg.drill_url)):
            out[redact_url(url)] = (f"hotline:{cfg.id}", channel)  # as plans name it
    return out


def _ack_pollers(gw: Gateway, channels: dict[str, tuple[str, Any]]) -> None:
    """One ack long-poll per police receiver with ``acks`` on (SPEC §6); health
    ``receivers`` shows each receiver's deliveries and its ack stream."""
    from gateway.escalation.acks import CURSOR_KEY, AckPoller, AckSource
    from gateway.escalation.http import build_ssl_context

    esc = gw.config.escalation
    receivers = [("hotline", esc.http)] if esc.http is not None and esc.http.acks else []
    receivers += [(r.id, r) for r in esc.receivers if r.acks]
    delivery = {source.removeprefix("hotline:"): ch for source, ch in channels.values()}
    if not receivers and not delivery:
        return
    stored = gw.journal.kv_all(CURSOR_KEY)
    pollers = []
    for rid, cfg in receivers:
        source = AckSource(rid, cfg.url, gw.config.site.id,
                           read_secret(gw.config, cfg.secret_file).encode(), cfg.poll_wait_s)
        context = build_ssl_context(str(gw.config.resolve(cfg.ca_file)) if cfg.ca_file else None,
                                    insecure=cfg.insecure) if cfg.url.startswith("https") else None
        cursor = stored.get(CURSOR_KEY + rid)
        poller = AckPoller(source, int(cursor) if isinstance(cursor, int) else 0,
                           _ack_commit(gw), _trouble(gw), gw.clock, context)
        pollers.append(poller)
        gw.add_task(poller.run, name=f"police-acks-{rid}")
    def health() -> dict[str, Any]:
        out: dict[str, Any] = {rid: {"delivery": ch.health()} for rid, ch in delivery.items()}
        for poller in pollers:
            out.setdefault(poller.source.receiver, {})["acks"] = poller.health()
        return out
    gw.health.add("receivers", health)


def _ack_commit(gw: Gateway) -> Any:
    async def commit(drafts: list[Any], kv: dict[str, Any]) -> None:
        await gw.recorder.record_many(drafts, kv=kv)
    return commit


def _trouble(gw: Gateway) -> Any:
    from gateway.core.events import EventDraft, EventType

    async def trouble(source: str, reason: str | None) -> None:
        if reason is None:
            await gw.recorder.record(EventDraft(EventType.TROUBLE_CLEARED,
                                                detail={"source": source}))
        else:
            await gw.recorder.record(EventDraft(EventType.TROUBLE,
                                                detail={"source": source, "reason": reason}))
    return trouble


def _health(http: Any, dispatcher: Dispatcher) -> Any:
    def health() -> dict[str, Any]:
        base = http.health() if http is not None else {"configured": False}
        return {**base, **dispatcher.health()}
    return health


def _modem(gw: Gateway) -> Any:
    """The LTE modem driver on ``[modem]``, its received SMS fed to the engine as
    police replies; None without a ``[modem]`` section."""
    cfg = gw.config.modem
    if cfg is None:
        return None
    from drivers.modem import Modem, ModemSettings

    settings = ModemSettings(port=str(gw.config.resolve(cfg.port)) if "://" not in cfg.port
                             else cfg.port, baudrate=cfg.baud, poll_s=cfg.poll_s)
    modem = Modem(settings, on_sms=reply_sink(gw.config, gw.recorder), clock=gw.clock)
    gw.add_task(modem.run, name="modem")
    return modem


def _modem_health(modem: Any) -> dict[str, Any]:
    if modem is None:
        return {"configured": False}
    return dict(modem.status())
