"""The DC-09 channel of one gateway: its receiving centres and what runs for them.

Built from ``[escalation.dc09]``, it hands the dispatcher its alarm lane
(:meth:`Dc09Service.runner`) and runs, per centre:

* the **link test**: a ``NULL`` every ``link_test_s`` seconds; a failed one raises the
  ``trouble`` ``dc09:<name>`` (like a hotline failure), the next good one clears it;
* the **event queue** (a journal consumer with its own durable cursor, ``dc09:<name>``):
  the restore of every alarm the centre was told of (``PR``, ``HR``, …, when the alarm is
  resolved) and, with ``report_events``, the devices' and the gateway's own events
  (tamper, low battery, supervision, trouble, periodic test). Each is sent until ACK (or
  DUH), in journal order, at least once; a crash resends under the same sequence number.
  A centre added to a site with a history starts at the journal's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import RESOLVED
from gateway.config.schema import Dc09Channel, SiteConfig, read_key
from gateway.core.clock import rfc3339
from gateway.core.events import Event, EventType
from gateway.core.ports import Clock
from gateway.escalation.dc09.codec import Identity, SiaEvent
from gateway.escalation.dc09.codes import Mapper
from gateway.escalation.dc09.link import Dc09Link, Outcome, link_tests
from gateway.escalation.dc09.runner import CHANNEL, Dc09Runner, trouble_source
from gateway.escalation.dc09.sequence import Sequences
from gateway.escalation.delivery import Reporter, Sleep
from gateway.escalation.wire import RetryPolicy
from gateway.journal.store import Journal, Subscription

log = logging.getLogger(__name__)

RESTORE_KINDS = ("panic", "duress", "intrusion", "door")


def consumer_name(receiver: str) -> str:
    """The journal cursor of one centre's event queue."""
    return f"{CHANNEL}:{receiver}"


class Dc09Service:
    """Links, sequence numbers and the code mapping of every configured centre."""

    def __init__(self, config: SiteConfig, cfg: Dc09Channel, journal: Journal, clock: Clock,
                 *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.cfg = cfg
        self._journal = journal
        self._clock = clock
        self._sleep = sleep
        policy = RetryPolicy(max_attempts=cfg.max_attempts, base_s=cfg.retry_base_s,
                             cap_s=cfg.retry_cap_s)
        self.links: dict[str, Dc09Link] = {}
        for r in cfg.receivers:
            key = read_key(config, r.key_file) if r.key_file else None
            identity = Identity(account=r.account.upper(), line=r.line.upper(),
                                receiver=r.receiver.upper() if r.receiver else None, key=key)
            self.links[r.name] = Dc09Link(r.name, r.host, r.port, identity,
                                          timeout_s=cfg.timeout_s, policy=policy, clock=clock,
                                          sleep=sleep)
        self.sequences = Sequences(journal)
        self.sequences.load()
        self.mapper = Mapper(config, dict(cfg.codes))
        self.pause_s = 30.0
        self._reporter: Reporter | None = None
        self._engine: AlarmEngine | None = None
        self._tests: dict[str, dict[str, Any]] = {r.name: {} for r in cfg.receivers}
        self._sent: dict[str, int] = {r.name: 0 for r in cfg.receivers}

    # -- wiring -----------------------------------------------------------------------
    def runner(self, reporter: Reporter, sleep: Sleep, pause_s: float) -> Dc09Runner:
        """The dispatcher's lane; its reporter journals this channel's trouble too, so a
        centre's trouble is raised and cleared once whoever noticed it."""
        self._reporter, self.pause_s = reporter, pause_s
        return Dc09Runner(self.links, self.sequences, self.mapper, reporter, sleep, pause_s)

    def attach(self, engine: AlarmEngine) -> None:
        """The engine whose alarms' restores the event queues report."""
        self._engine = engine

    def tasks(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """What runs for every centre: its event queue and (if any) its link test."""
        out: list[Callable[[], Coroutine[Any, Any, None]]] = []
        for r in self.cfg.receivers:
            out.append(_bind(self.events, r.name))
            if r.link_test_s > 0:
                out.append(_bind(self.link_test, r.name))
        return out

    def consumers(self) -> list[str]:
        return [consumer_name(r.name) for r in self.cfg.receivers]

    def health(self) -> dict[str, Any]:
        """For ``gateway/health``: every centre's link and last link test, and the trouble."""
        trouble = sorted(t for t in (self._reporter.trouble if self._reporter else ())
                         if t.startswith(CHANNEL + ":"))
        return {"receivers": {name: {**link.health(), "link_test": self._tests[name],
                                     "events_sent": self._sent[name]}
                              for name, link in self.links.items()},
                "trouble": trouble}

    # -- link test --------------------------------------------------------------------
    async def link_test(self, name: str) -> None:
        """``NULL`` every ``link_test_s`` seconds until cancelled."""
        link = self.links[name]
        interval = next(r.link_test_s for r in self.cfg.receivers if r.name == name)

        async def next_seq() -> int:
            return await self.sequences.next(name)

        async def on_result(*, ok: bool, detail: str) -> None:
            self._tests[name] = {"ok": ok, "at": rfc3339(self._clock.wall()),
                                 "detail": detail}
            reporter = self._need_reporter()
            if ok:
                await reporter.trouble_off(trouble_source(name))
            else:
                await reporter.trouble_on(trouble_source(name), f"DC-09 {name}: {detail}")

        await link_tests(link, interval, next_seq, on_result, sleep=self._sleep)

    # -- event queue ------------------------------------------------------------------
    async def events(self, name: str) -> None:
        """Report the journal's events to one centre, in order, until cancelled."""
        consumer = consumer_name(name)
        if self._journal.cursor(consumer) == 0 and self._journal.last_seq > 0:
            sub = Subscription(self._journal, consumer)
            sub.advance(self._journal.last_seq)  # a new centre: from now on
        else:
            sub = Subscription(self._journal, consumer)
        try:
            while True:
                for event in await sub.next_batch(100):
                    message = self.message(event, name)
                    if message is not None:
                        await self._send(name, f"event:{event.seq}", message)
                    sub.advance(event.seq)
        finally:
            sub.close()

    def message(self, event: Event, receiver: str) -> SiaEvent | None:
        """What a journal event tells a centre, or None: the restore of a resolved alarm
        the centre was escalated, and (``report_events``) device and gateway events. The
        centre's own link trouble is not sent to it (it hears of it as the restore)."""
        if event.type == EventType.ALARM_STATE:
            return self._restore(event)
        if not self.cfg.report_events or event.drill:
            return None
        if (event.type in (EventType.TROUBLE, EventType.TROUBLE_CLEARED)
                and (event.detail or {}).get("source") == trouble_source(receiver)):
            return None
        return self.mapper.event(event)

    def _restore(self, event: Event) -> SiaEvent | None:
        detail = event.detail or {}
        if detail.get("state") != RESOLVED or self._engine is None or event.drill:
            return None
        alarm = self._engine.get(event.alarm_id or "")
        if alarm is None or alarm.type not in RESTORE_KINDS:
            return None
        if not any(e.channel == CHANNEL for e in alarm.escalations):
            return None
        return self.mapper.alarm({"type": alarm.type, "drill": alarm.drill,
                                  "device": alarm.device, "ward": alarm.ward,
                                  "room": alarm.room}, restore=True)

    async def _send(self, name: str, key: str, message: SiaEvent) -> None:
        """Until ACK or DUH (a DUH'd event is logged and skipped: resending cannot help)."""
        link = self.links[name]
        seq = await self.sequences.claim(name, key)
        reporter = self._need_reporter()
        while True:
            result = await link.deliver(seq, message)
            if result.outcome == Outcome.DELIVERED:
                self._sent[name] += 1
                await reporter.trouble_off(trouble_source(name))
                break
            await reporter.trouble_on(trouble_source(name), f"DC-09 {name}: {result.detail}")
            if result.outcome == Outcome.REFUSED:
                log.warning("event=dc09_event_refused receiver=%s code=%s", name, message.code)
                break
            await self._sleep(self.pause_s)
        await self.sequences.release(name, key)

    def _need_reporter(self) -> Reporter:
        if self._reporter is None:
            raise RuntimeError("the DC-09 channel runs only beside the dispatcher")
        return self._reporter


def _bind(method: Callable[[str], Awaitable[None]], name: str
          ) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        await method(name)
    run.__name__ = f"{method.__name__}_{name}"
    return run
