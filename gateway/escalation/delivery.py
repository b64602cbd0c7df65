"""The two delivery loops of the dispatcher and the journaling they share.

:class:`Reporter` turns every attempt into an ``escalation_attempt`` event (and raises or
clears ``trouble``); :class:`HttpRunner` drives the HTTP channel until delivered or
refused, pausing between rounds of retries while the hotline is away; :class:`SmsRunner`
sends one SMS per number, at most one per ``min_interval_s`` per number, retrying a
failing modem with backoff. Neither ever gives up on an open alarm: an escalation is owed
until delivered, refused, superseded or its alarm resolved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import EscalationEntry
from gateway.alarms.plan import Delivery, Plan, Scope
from gateway.core.backoff import Backoff
from gateway.core.clock import rfc3339
from gateway.core.enums import FINAL_STATUSES, AttemptStatus, Channel, EntryStatus, RunOutcome
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, EventSink
from gateway.core.redact import redact_url
from gateway.escalation.outbound import Outbound
from gateway.escalation.wire import AttemptCallback, Verdict, classify_status

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
#: between failed sends of one SMS: 1 s, doubling, at most a minute (no jitter: one modem)
RESEND = Backoff(first_s=1.0, cap_s=60.0)
#: the ``escalation_attempt`` status an HTTP answer's verdict is journaled as
ATTEMPT_STATUS = {Verdict.DELIVERED: AttemptStatus.DELIVERED,
                  Verdict.PERMANENT: AttemptStatus.FAILED, Verdict.RETRY: AttemptStatus.RETRYING}


class Reporter:
    """Journals attempts and trouble; reads delivery status back from the engine."""

    def __init__(self, sink: EventSink, engine: AlarmEngine, clock: Clock) -> None:
        self._sink = sink
        self._engine = engine
        self.clock = clock
        self.trouble: set[str] = set()

    def entry(self, plan: Scope | Plan, d: Delivery) -> EscalationEntry | None:
        for alarm_id in plan.alarms:
            alarm = self._engine.get(alarm_id)
            entry = alarm.entry(d.escalation_id) if alarm else None
            if entry is not None:
                return entry
        return None

    def status(self, plan: Scope | Plan, d: Delivery) -> EntryStatus | None:
        entry = self.entry(plan, d)
        return entry.status if entry else None

    def attempts(self, plan: Scope | Plan, d: Delivery) -> int:
        entry = self.entry(plan, d)
        return entry.attempts if entry else 0

    def still_owed(self, plan: Scope | Plan, d: Delivery) -> bool:
        """Not final, and some alarm of the plan still open."""
        alarms = [self._engine.get(a) for a in plan.alarms]
        return self.status(plan, d) not in FINAL_STATUSES and any(a and a.open for a in alarms)

    async def attempt(self, plan: Scope | Plan, d: Delivery, attempt: int,
                      status: AttemptStatus, *, will_retry: bool, **extra: Any) -> None:
        """Journal one ``escalation_attempt`` (``extra``: its further detail fields)."""
        detail = {"escalation_id": d.escalation_id, "channel": d.channel,
                  "target": d.target, "attempt": attempt, "status": status,
                  "will_retry": will_retry, "alarms": list(plan.alarms)}
        detail.update({k: v for k, v in extra.items() if v is not None})
        drill = plan.drill
        await self._sink.record(EventDraft(EventType.ESCALATION_ATTEMPT, drill=drill,
                                           alarm_id=plan.alarms[0] if plan.alarms else None,
                                           detail=detail))

    async def trouble_on(self, source: str, reason: str) -> None:
        if source not in self.trouble:
            self.trouble.add(source)
            log.warning("event=trouble source=%s reason=%r", source, reason)
            await self._sink.record(EventDraft(EventType.TROUBLE,
                                               detail={"source": source, "reason": reason}))

    async def trouble_off(self, source: str) -> None:
        if source in self.trouble:
            self.trouble.discard(source)
            await self._sink.record(EventDraft(EventType.TROUBLE_CLEARED,
                                               detail={"source": source}))


class HttpRunner:
    """Delivers one plan's HTTP escalation through ``channel`` (``HttpChannel``).

    Between rounds of retries (the channel's ``max_attempts``) it pauses ``pause_s``
    seconds; with a deadline the pause ends at the deadline, so running out of attempts
    early never holds back the ``fallback`` SMS.
    """

    def __init__(self, channel: Any, outbound: Outbound, reporter: Reporter, sleep: Sleep,
                 pause_s: float, *, receivers: dict[str, tuple[str, Any]] | None = None
                 ) -> None:
        self.channel = channel
        # target URL -> (trouble source, channel) of each police receiver (SPEC §6): each
        # has its own secret and its own trouble, so one receiver down never hides another
        self.receivers = dict(receivers or {})
        self._outbound = outbound
        self._reporter = reporter
        self._sleep = sleep
        self.pause_s = pause_s

    async def deliver(self, plan: Plan, d: Delivery,
                      deadline_s: float | None) -> RunOutcome:
        """``delivered``, ``refused`` (permanent 4xx), ``late`` (``deadline_s`` seconds from
        now passed, still owed) or ``closed`` (nothing owed any more)."""
        clock = self._reporter.clock
        deadline = None if deadline_s is None else clock.monotonic() + deadline_s
        source, channel = self.route(d.target)
        if channel is None:
            await self._reporter.attempt(plan, d, 0, AttemptStatus.FAILED, will_retry=False,
                                         error="no HTTP channel for this URL any more")
            return RunOutcome.REFUSED
        request = self._outbound.request(plan, d.escalation_id)
        done = [self._reporter.attempts(plan, d)]
        while self._reporter.still_owed(plan, d):
            remaining = None if deadline is None else deadline - clock.monotonic()
            if remaining is not None and remaining <= 0:
                return RunOutcome.LATE
            result = await channel.deliver(
                request, on_attempt=self._reporting(plan, d, done, deadline, source),
                deadline_s=remaining)
            if result.delivered:
                await self._reporter.trouble_off(source)
                return RunOutcome.DELIVERED
            reason = f"{source}: {result.detail}"
            await self._reporter.trouble_on(source, reason)
            if result.permanent_failure:
                return RunOutcome.REFUSED
            if result.deadline_exceeded:
                return RunOutcome.LATE
            await self._sleep(self._pause(deadline))
        return RunOutcome.CLOSED

    def route(self, target: str) -> tuple[str, Any]:
        """``(trouble source, channel)`` for a delivery's URL: a configured police
        receiver's own channel, else the hotline's (its URL or drill URL); the channel is
        None when the URL is no longer configured (a plan replayed after a config change)."""
        if target in self.receivers:
            return self.receivers[target]
        urls = (getattr(self.channel, "url", None), getattr(self.channel, "drill_url", None))
        if not self.receivers or target in {redact_url(u) for u in urls if u}:
            return "hotline", self.channel
        return "hotline", None

    def _pause(self, deadline: float | None) -> float:
        """Seconds until the next round: ``pause_s``, but no later than ``deadline``."""
        if deadline is None:
            return self.pause_s
        return max(0.0, min(self.pause_s, deadline - self._reporter.clock.monotonic()))

    def _reporting(self, plan: Plan, d: Delivery, done: list[int],
                   deadline: float | None, source: str
                   ) -> AttemptCallback:
        async def on_attempt(n: int, label: int | str, *, will_retry: bool,
                             delay_s: float) -> None:
            done[0] += 1
            verdict = classify_status(label) if isinstance(label, int) else Verdict.RETRY
            status = ATTEMPT_STATUS[verdict]
            extra: dict[str, Any] = {"http_status": label if isinstance(label, int) else None,
                                     "error": None if isinstance(label, int) else label}
            if status is AttemptStatus.DELIVERED:
                extra["delivered_at"] = rfc3339(self._reporter.clock.wall())
                # the hotline answered: its trouble ends now, journaled before the delivery
                # (whoever sees the alarm delivered sees the trouble over, never the reverse)
                await self._reporter.trouble_off(source)
            if status is AttemptStatus.RETRYING:
                extra["retry_in_s"] = round(delay_s if will_retry else self._pause(deadline), 3)
            await self._reporter.attempt(plan, d, done[0], status,
                                         will_retry=status is AttemptStatus.RETRYING, **extra)
        return on_attempt


@dataclass
class _Lane:
    """One phone number: its lock (one SMS at a time) and when it last got one
    (``last_sent``: monotonic seconds, so a wall-clock step never stalls the next SMS)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_sent: float | None = None


class SmsRunner:
    """Sends plan SMS through ``sender`` (the modem), rate-limited per number."""

    def __init__(self, sender: Any, outbound: Outbound, reporter: Reporter, clock: Clock,
                 sleep: Sleep, min_interval_s: float, backoff: Backoff = RESEND) -> None:
        self.sender = sender
        self._outbound = outbound
        self._reporter = reporter
        self._clock = clock
        self._sleep = sleep
        self.min_interval_s = min_interval_s
        self._backoff = backoff
        self._lanes: dict[str, _Lane] = {}
        self.sent = 0
        #: called once an SMS went out (the wake-up call follows it); never awaited
        self.after_send: Callable[[Plan, Delivery], None] | None = None

    async def deliver(self, plan: Plan, d: Delivery) -> None:
        lane = self._lanes.setdefault(d.target, _Lane())
        async with lane.lock:
            failures, limited = self._backoff.counter(), False
            while self._reporter.still_owed(plan, d):
                wait = self._wait(lane)
                if wait > 0:
                    if not limited:
                        limited = True
                        await self._reporter.attempt(plan, d, 0, AttemptStatus.RATE_LIMITED,
                                                     will_retry=True,
                                                     retry_in_s=round(wait, 3))
                    await self._sleep(wait)
                    continue
                if await self._send(plan, d, lane):
                    return
                await self._sleep(failures.next())

    def _wait(self, lane: _Lane) -> float:
        if lane.last_sent is None:
            return 0.0
        return lane.last_sent + self.min_interval_s - self._clock.monotonic()

    async def _send(self, plan: Plan, d: Delivery, lane: _Lane) -> bool:
        attempt = self._reporter.attempts(plan, d) + 1
        text = self._outbound.sms_text(plan, d.escalation_id, attempt, d.reminder)
        try:
            refs = await self.sender.send_sms(d.target, text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            await self._reporter.attempt(plan, d, attempt, AttemptStatus.ERROR, will_retry=True,
                                         error=error)
            await self._reporter.trouble_on("modem", f"SMS to {d.target} failed: {error}")
            return False
        lane.last_sent = self._clock.monotonic()
        self.sent += 1
        if self.after_send is not None:
            self.after_send(plan, d)
        # the modem returns one network reference per part: the parts are what the
        # operator bills (the monthly report's SMS cost)
        parts = {"parts": len(refs)} if isinstance(refs, list) and refs else {}
        await self._reporter.attempt(plan, d, attempt, AttemptStatus.DELIVERED, will_retry=False,
                                     delivered_at=rfc3339(self._clock.wall()), **parts)
        await self._reporter.trouble_off("modem")
        return True


class AnswerRunner:
    """Answers police replies (:mod:`gateway.escalation.answers`) through the modem, at once:
    an answer never waits behind an alarm SMS's per-number interval (the officer is
    looking at the phone), and is sent once (a failed answer is journaled, not retried:
    the alarm itself is already acknowledged)."""

    def __init__(self, config: Any, sender: Any, outbound: Outbound, reporter: Reporter,
                 engine: AlarmEngine, clock: Clock) -> None:
        from gateway.escalation.answers import ExplainLimit

        self._config = config
        self.sender = sender
        self._texts = outbound.sms_texts
        self._reporter = reporter
        self._engine = engine
        self._clock = clock
        self._limit = ExplainLimit()
        self.sent = 0

    async def answer(self, event: Any) -> None:
        from gateway.core.smstext import shape
        from gateway.escalation.answers import answer_for

        answer = answer_for(self._config, self._texts, event, self._engine)
        if answer is None or self.sender is None:
            return
        if not self._limit.allow(answer, self._clock.monotonic()):
            log.info("event=answer_withheld to=%s purpose=%s", answer.number, answer.purpose)
            return
        plan = Scope(alarms=answer.alarms, drill=answer.drill)
        d = Delivery(escalation_id=f"reply-{event.seq}", channel=Channel.SMS,
                     target=answer.number)
        extra = {"purpose": str(answer.purpose), "text": answer.text,
                 "parts": shape(answer.text).parts, "reply_seq": event.seq}
        try:
            await self.sender.send_sms(answer.number, answer.text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            await self._reporter.attempt(plan, d, 1, AttemptStatus.ERROR, will_retry=False,
                                         error=error, **extra)
            return
        self.sent += 1
        await self._reporter.attempt(plan, d, 1, AttemptStatus.DELIVERED, will_retry=False,
                                     delivered_at=rfc3339(self._clock.wall()), **extra)
