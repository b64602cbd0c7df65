"""The dispatcher's DC-09 lane: one plan's message to one receiving centre, until ACK.

Like the HTTP lane (:class:`~gateway.escalation.delivery.HttpRunner`), it never gives up
on an open alarm: the first attempt without an answer raises ``trouble``
``dc09:<receiver>`` (an alarm panel's "communication failure" shows at once too), and a
round of retries (the channel's ``max_attempts``) that ends without an answer is
followed, after a pause, by another round under the *same* sequence number, claimed and journaled before the first
byte goes out (so a resend after a crash is recognisable at the centre). ``DUH`` fails
the delivery for good: the centre understood the message and will not take it, so
sending it again cannot help; it is a trouble too, for an operator to look at.
Every attempt is journaled as ``escalation_attempt`` with the answer and the sequence.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.alarms.plan import Delivery, Plan
from gateway.core.clock import rfc3339
from gateway.core.enums import AttemptStatus, RunOutcome
from gateway.escalation.dc09.codec import SiaEvent
from gateway.escalation.dc09.codes import Mapper
from gateway.escalation.dc09.link import AttemptCallback, Dc09Link, Outcome
from gateway.escalation.dc09.sequence import Sequences
from gateway.escalation.delivery import Reporter, Sleep

log = logging.getLogger(__name__)

CHANNEL = "dc09"


def trouble_source(receiver: str) -> str:
    """The ``trouble`` source of one receiving centre (a communication trouble)."""
    return f"{CHANNEL}:{receiver}"


class Dc09Runner:
    """Delivers plans to the configured centres (``links`` by receiver name)."""

    def __init__(self, links: dict[str, Dc09Link], sequences: Sequences, mapper: Mapper,
                 reporter: Reporter, sleep: Sleep, pause_s: float) -> None:
        self.links = links
        self.sequences = sequences
        self.mapper = mapper
        self._reporter = reporter
        self._sleep = sleep
        self.pause_s = pause_s

    def event(self, plan: Plan) -> SiaEvent:
        """The DC-03 event of a plan; a mass alarm says how many alarms it stands for."""
        event = self.mapper.alarm(plan.alarm.to_json())
        if plan.mass:
            return SiaEvent(code=event.code, zone=event.zone, area=event.area,
                            text=f"MASS {plan.count}: {event.text}")
        return event

    async def deliver(self, plan: Plan, d: Delivery) -> RunOutcome:
        """``delivered``, ``refused`` (DUH, or no such receiver) or ``closed`` (nothing
        owed any more: the alarm was resolved before the centre answered)."""
        name = str(d.target)
        link = self.links.get(name)
        if link is None:
            await self._reporter.attempt(plan, d, 0, AttemptStatus.FAILED, will_retry=False,
                                         error=f"no DC-09 receiver named {name!r}")
            return RunOutcome.REFUSED
        seq = await self.sequences.claim(name, d.escalation_id)
        event = self.event(plan)
        done = [self._reporter.attempts(plan, d)]
        try:
            while self._reporter.still_owed(plan, d):
                result = await link.deliver(seq, event,
                                            on_attempt=self._reporting(plan, d, done, seq))
                if result.outcome == Outcome.DELIVERED:
                    await self._reporter.trouble_off(trouble_source(name))
                    return RunOutcome.DELIVERED
                await self._reporter.trouble_on(trouble_source(name),
                                                f"DC-09 {name}: {result.detail}")
                if result.outcome == Outcome.REFUSED:
                    return RunOutcome.REFUSED
                await self._sleep(self.pause_s)
            return RunOutcome.CLOSED
        finally:
            if not self._reporter.still_owed(plan, d):
                await self.sequences.release(name, d.escalation_id)

    def _reporting(self, plan: Plan, d: Delivery, done: list[int],
                   seq: int) -> AttemptCallback:
        async def on_attempt(n: int, label: str, *, will_retry: bool, delay_s: float) -> None:
            done[0] += 1
            extra: dict[str, Any] = {"sequence": seq, "answer": label}
            if label in ("ACK", "RSP"):
                status = AttemptStatus.DELIVERED
                extra["delivered_at"] = rfc3339(self._reporter.clock.wall())
            elif label == "DUH":
                status = AttemptStatus.FAILED
                extra["error"] = "DUH: the receiving centre cannot process it"
            else:
                status, extra["error"] = AttemptStatus.RETRYING, label
                extra["retry_in_s"] = round(delay_s if will_retry else self.pause_s, 3)
            await self._reporter.attempt(plan, d, done[0], status,
                                         will_retry=status is AttemptStatus.RETRYING, **extra)
            if status is AttemptStatus.RETRYING:  # the first failed attempt already is a trouble
                await self._reporter.trouble_on(trouble_source(str(d.target)),
                                                f"DC-09 {d.target}: {label}")
        return on_attempt
