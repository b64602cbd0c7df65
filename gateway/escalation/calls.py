"""The call after the SMS (``[escalation.voice]``): it wakes the officer, the SMS says what.

When an alarm SMS reaches a number listed in ``voice.numbers``, the modem calls that number,
lets it ring ``ring_s`` seconds and hangs up (:mod:`drivers.voice`); the outcome
(``answered``, ``busy``, ``no_answer``, ``no_carrier``, ``error``) is journaled as an
``escalation_attempt`` on channel ``voice``. A call is started after the SMS, never before
and never in its way: it runs as its own task, one call at a time on the modem, and an SMS
or a police reply is served between its short AT commands. A number is called at most once
per ``min_interval_s`` (a burst of alarms rings once); an alarm already acknowledged by the
police, or resolved, is not called about, and a call still ringing when the police
answer the SMS is hung up (``stopped``). Calls are a wake-up, best effort: one that was
due when the gateway stopped is not made after a restart (the SMS it followed was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import POLICE_ACKNOWLEDGED
from gateway.alarms.plan import Delivery, Plan
from gateway.config.schema import Voice
from gateway.core.enums import AttemptStatus, Channel
from gateway.core.ports import Clock
from gateway.escalation.delivery import Reporter
from gateway.escalation.replies import e164

log = logging.getLogger(__name__)



class CallRunner:
    """Calls ``voice.numbers`` after their SMS through ``caller`` (the modem's ``call``)."""

    def __init__(self, voice: Voice, caller: Any, reporter: Reporter, engine: AlarmEngine,
                 clock: Clock) -> None:
        self.voice = voice
        self._caller = caller
        self._reporter = reporter
        self._engine = engine
        self._clock = clock
        self._numbers = frozenset(e164(n) for n in voice.numbers)
        self._last: dict[str, float] = {}  # number -> monotonic time of its last call
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0

    def after_sms(self, plan: Plan, d: Delivery) -> None:
        """An SMS of ``plan`` reached ``d.target``: call it, if it is a voice number."""
        number = e164(d.target)
        if number not in self._numbers:
            return
        task = asyncio.create_task(self._call(plan, d, number), name=f"call-{number}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _call(self, plan: Plan, d: Delivery, number: str) -> None:
        entry = Delivery(escalation_id=f"{d.escalation_id}-call", channel=Channel.VOICE,
                         target=number)
        now = self._clock.monotonic()
        last = self._last.get(number)
        if last is not None and now - last < self.voice.min_interval_s:
            await self._reporter.attempt(plan, entry, 0, AttemptStatus.RATE_LIMITED,
                                         will_retry=False, note=f"called {now - last:.0f} s ago")
            return
        self._last[number] = now
        if not self._wanted(plan):
            return
        result = await self._caller.call(number, self.voice.ring_s,
                                         wanted=lambda: self._wanted(plan))
        self.calls += 1
        await self._reporter.attempt(plan, entry, 1, AttemptStatus(str(result.outcome)),
                                     will_retry=False, rang_s=result.rang_s,
                                     note=result.detail or None)
        if result.outcome == "error":
            await self._reporter.trouble_on("voice", f"call to {number}: {result.detail}")
        else:
            await self._reporter.trouble_off("voice")

    def _wanted(self, plan: Plan) -> bool:
        """Some alarm of the plan is open and not yet acknowledged by the police."""
        alarms = [self._engine.get(a) for a in plan.alarms]
        return any(a is not None and a.open and a.state != POLICE_ACKNOWLEDGED for a in alarms)
