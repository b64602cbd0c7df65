"""The escalation dispatcher: executes the engine's escalation plans, at least once.

A journal consumer with its own durable cursor (``escalation``). Each ``alarm_state``
event carrying a plan becomes one job that delivers on every channel at once (``dual``)
or SMS only after HTTP failed permanently or ran out of time (``fallback``); a DC-09
receiving centre is told at once in either mode. Every attempt
is journaled as ``escalation_attempt``; the engine folds those into the alarm (delivered →
``escalated``, LED 3). The cursor only passes a plan once all its deliveries are finished,
so a crash replays it; deliveries the alarm already records as final are skipped, and the
same escalation ids are reused. Rationale: ``docs/alarms.md``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.alarms.plan import Delivery, Plan, Scope
from gateway.config.schema import SiteConfig
from gateway.core.clock import parse_rfc3339
from gateway.core.enums import (
    FINAL_STATUSES,
    AttemptStatus,
    Channel,
    DeliveryMode,
    EntryStatus,
    RunOutcome,
)
from gateway.core.events import Event, EventDraft, EventType
from gateway.core.ports import Clock, EventSink, SmsHandler, SmsSender
from gateway.escalation.calls import CallRunner
from gateway.escalation.delivery import AnswerRunner, HttpRunner, Reporter, SmsRunner
from gateway.escalation.outbound import Outbound
from gateway.journal.store import Journal, Subscription

log = logging.getLogger(__name__)

CONSUMER = "escalation"


class JobFailed(RuntimeError):
    """An escalation job raised: what it owed is undelivered, so the gateway must stop."""


class Dispatcher:
    """Runs plans from the journal; ``http`` / ``sms`` may be None when not configured.

    ``dc09`` makes the DC-09 lane from the dispatcher's reporter, sleep and pause
    (``(reporter, sleep, pause_s) -> Dc09Runner``), or is None without ``[escalation.dc09]``.
    """

    def __init__(
        self,
        config: SiteConfig,
        journal: Journal,
        sink: EventSink,
        engine: AlarmEngine,
        clock: Clock,
        http: Any = None,
        sms: SmsSender | None = None,
        *,
        receivers: dict[str, tuple[str, Any]] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        retry_pause_s: float = 30.0,
        dc09: Any = None,
    ) -> None:
        self._journal = journal
        self._engine = engine
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._done_upto = 0
        self._live_from = 0  # plans after this seq were decided while this run was up
        self._sub: Subscription | None = None
        self.reporter = Reporter(sink, engine, clock)
        outbound = Outbound(config)
        self.http = HttpRunner(http, outbound, self.reporter, sleep, retry_pause_s,
                               receivers=receivers) if http or receivers else None
        self.sms = SmsRunner(sms, outbound, self.reporter, clock, sleep,
                             config.escalation.sms.min_interval_s
                             if config.escalation.sms else 0) if sms else None
        self.answers = AnswerRunner(config, sms, outbound, self.reporter, engine, clock)
        voice = config.escalation.voice
        self.calls = CallRunner(voice, sms, self.reporter, engine, clock) if (
            voice is not None and voice.numbers and hasattr(sms, "call")) else None
        if self.sms is not None and self.calls is not None:
            self.sms.after_send = self.calls.after_sms  # the call follows the SMS
        self.dc09 = dc09(self.reporter, sleep, retry_pause_s) if dc09 is not None else None
        self.plans_seen = 0
        self.unreadable = 0  # journaled plans that could not be read back (logged each)
        self.answers_failed = 0  # answers to police replies whose job raised (logged each)
        self._failed: BaseException | None = None  # a job that raised: the gateway stops
        self._wake: asyncio.Event | None = None

    def health(self) -> dict[str, Any]:
        return {"escalations_in_flight": len(self._inflight), "plans": self.plans_seen,
                "unreadable_plans": self.unreadable, "answers_failed": self.answers_failed,
                "trouble": sorted(self.reporter.trouble)}

    async def run(self) -> None:
        """Consume the journal until cancelled; cancelling stops every job.

        Reading runs ahead of the durable cursor: the cursor stays just before the oldest
        plan still being delivered, so a restart replays exactly the unfinished ones.
        """
        sub = self._sub = Subscription(self._journal, CONSUMER)
        self._done_upto = sub.position
        self._live_from = self._journal.last_seq
        wake = self._wake = asyncio.Event()
        self._journal.add_listener(wake.set)
        try:
            while True:
                if self._failed is not None:
                    raise JobFailed(f"an escalation job failed: {self._failed!r}; "
                                    "a restart replays its plan") from self._failed
                wake.clear()
                events = self._journal.events_after(self._done_upto, 200)
                if not events:
                    await wake.wait()
                    continue
                for event in events:
                    self._take(event)
                self._done_upto = events[-1].seq
                sub.advance(self._low_water())
        finally:
            self._journal.remove_listener(wake.set)
            if self.calls is not None:
                await self.calls.stop()
            jobs = list(self._inflight.values())
            for task in jobs:
                task.cancel()
            if jobs:  # let each job unwind; a second cancel of this task still propagates
                await asyncio.wait(jobs)
            sub.close()
            self._sub = None

    def _take(self, event: Event) -> None:
        if event.type == EventType.POLICE_REPLY and self.sms is not None:
            self._track(event.seq, self.answers.answer(event), f"answer-{event.seq}",
                        owed=False)
            return
        journaled = (event.detail or {}).get("escalation")
        if event.type != EventType.ALARM_STATE or not isinstance(journaled, dict):
            return
        self.plans_seen += 1
        try:
            plan = Plan.from_json(journaled)  # the journal boundary: typed from here on
        except (KeyError, TypeError, ValueError) as exc:
            self.unreadable += 1
            log.error("event=escalation_plan_unreadable seq=%d error=%r", event.seq, str(exc))
            return
        if event.seq <= self._live_from:
            plan = replace(plan, replayed=True)
        self._track(event.seq, self._execute(plan), f"escalation-{event.seq}", owed=True)

    def _track(self, seq: int, job: Coroutine[Any, Any, None], name: str, *,
               owed: bool) -> None:
        """Run ``job`` for the event ``seq``; the cursor stays before it until it ends.
        ``owed``: a delivery to the police (a failure stops the gateway); an answer to a
        police reply is a courtesy whose failure is logged and counted, so a reply that
        trips it can never keep a gateway restarting on its replay."""
        task = asyncio.create_task(job, name=name)
        self._inflight[seq] = task
        task.add_done_callback(functools.partial(self._finished, seq, owed=owed))

    def _finished(self, seq: int, task: asyncio.Task[None], *, owed: bool) -> None:
        if task.cancelled():
            return  # stopped, not finished: the cursor stays before it, a restart replays it
        failure = task.exception()
        if failure is not None and not owed:
            self.answers_failed += 1
            log.error("event=answer_job_failed seq=%d error=%r", seq, str(failure))
        elif failure is not None:
            # the delivery this job owed is not done: keep the cursor before it (a restart
            # replays the plan) and end the dispatcher, so the gateway stops loudly instead
            # of showing an alarm as "being sent" for ever
            log.error("event=escalation_job_failed seq=%d error=%r", seq, str(failure))
            self._failed = self._failed or failure
            if self._wake is not None:
                self._wake.set()
            return
        self._inflight.pop(seq, None)
        if self._sub is not None:
            self._sub.advance(self._low_water())

    def _low_water(self) -> int:
        return min(self._inflight, default=self._done_upto + 1) - 1

    # -- one plan -----------------------------------------------------------------------
    async def _execute(self, plan: Plan) -> None:
        if plan.mass:
            await self._supersede(plan)
        todo = [d for d in plan.deliveries if self._status(plan, d) not in FINAL_STATUSES]
        http = [d for d in todo if d.channel is Channel.HTTP]
        sms = [d for d in todo if d.channel is Channel.SMS]
        fallback = plan.delivery is DeliveryMode.FALLBACK and http and self.http is not None
        async with asyncio.TaskGroup() as tg:
            for d in todo:
                if d.channel is Channel.DC09:  # a centre is always told at once
                    tg.create_task(self._dc09(plan, d))
            if fallback:
                tg.create_task(self._fallback(plan, http, sms, tg))
            else:
                for d in http:
                    tg.create_task(self._http(plan, d, None))
                for d in sms:
                    tg.create_task(self._sms(plan, d))

    async def _fallback(self, plan: Plan, http: list[Delivery], sms: list[Delivery],
                        tg: asyncio.TaskGroup) -> None:
        """HTTP first (every URL at once); SMS once none of them was delivered within
        the time (each refused or late)."""
        standby = [d for d in sms if self._status(plan, d) == EntryStatus.STANDBY]
        if standby:
            left = self._fallback_left(plan)
            outcomes = await asyncio.gather(*(self._http(plan, d, left) for d in http))
            if any(o in (RunOutcome.DELIVERED, RunOutcome.CLOSED) for o in outcomes):
                for d, outcome in zip(http, outcomes, strict=True):
                    if outcome is RunOutcome.LATE:
                        tg.create_task(self._http(plan, d, None))
                return
            for d in standby:
                await self.reporter.attempt(plan, d, 0, AttemptStatus.ACTIVATED, will_retry=False,
                                            note=f"HTTP {'/'.join(sorted(set(outcomes)))}")
            for d, outcome in zip(http, outcomes, strict=True):
                if outcome is RunOutcome.LATE:
                    tg.create_task(self._http(plan, d, None))
        else:
            for d in http:
                if self._status(plan, d) not in FINAL_STATUSES:
                    tg.create_task(self._http(plan, d, None))
        for d in sms:
            tg.create_task(self._sms(plan, d))

    def _fallback_left(self, plan: Plan) -> float:
        """Seconds left of ``fallback_after_s``. A plan decided during this run started
        a moment ago: all of it, waited on the monotonic clock (a wall-clock step must
        not move it). A plan replayed after a restart counts from its decision on the
        wall clock (all that survives a restart), so it does not start its wait over."""
        limit = float(plan.fallback_after_s)
        if not plan.replayed:
            return limit
        try:
            elapsed = self.reporter.clock.wall() - parse_rfc3339(plan.decided_at)
        except ValueError:
            return limit
        return min(limit, max(0.0, limit - elapsed))

    async def _http(self, plan: Plan, d: Delivery, deadline_s: float | None) -> RunOutcome:
        if self.http is None:
            await self.reporter.attempt(plan, d, 0, AttemptStatus.FAILED, will_retry=False,
                                        error="no HTTP channel")
            return RunOutcome.FAILED
        return await self.http.deliver(plan, d, deadline_s)

    async def _sms(self, plan: Plan, d: Delivery) -> None:
        if self.sms is None:
            await self.reporter.attempt(plan, d, 0, AttemptStatus.FAILED, will_retry=False,
                                        error="no modem")
            return
        await self.sms.deliver(plan, d)

    async def _dc09(self, plan: Plan, d: Delivery) -> None:
        if self.dc09 is None:
            await self.reporter.attempt(plan, d, 0, AttemptStatus.FAILED, will_retry=False,
                                        error="no DC-09 channel")
            return
        await self.dc09.deliver(plan, d)

    async def _supersede(self, plan: Plan) -> None:
        """A combined escalation replaces its members' SMS not yet sent: one SMS per
        number for the whole mass alarm."""
        numbers = {d.target for d in plan.deliveries if d.channel is Channel.SMS}
        ours = {d.escalation_id for d in plan.deliveries}
        for alarm_id in plan.alarms:
            alarm = self._engine.get(alarm_id)
            for entry in list(alarm.escalations) if alarm else []:
                if (entry.channel is Channel.SMS and entry.target in numbers
                        and entry.escalation_id not in ours
                        and entry.status not in FINAL_STATUSES):
                    lone = Delivery(escalation_id=entry.escalation_id, channel=entry.channel,
                                    target=entry.target)
                    await self.reporter.attempt(
                        Scope(alarms=(alarm_id,)), lone,
                        0, AttemptStatus.SUPERSEDED, will_retry=False,
                        note=f"combined into mass alarm {plan.key}")

    def _status(self, plan: Plan, d: Delivery) -> EntryStatus | None:
        return self.reporter.status(plan, d)


def reply_sink(config: SiteConfig, sink: EventSink) -> SmsHandler:
    """The modem's ``on_sms`` callback: every received SMS becomes a ``police_reply``."""
    from gateway.escalation.replies import reply_draft

    async def on_sms(sender: str, text: str, received_at: float | None = None, *,
                     numeric: bool) -> None:
        draft: EventDraft = reply_draft(config, sender, text, numeric=numeric)
        await sink.record(draft)

    return on_sms
