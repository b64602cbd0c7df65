"""Deadlines fire on time across wall-clock steps either way (a Pi has no RTC: NTP steps
and a technician's ``date`` happen). Waiting uses monotonic time; the wall clock is only for
display and the journal; after a restart a deadline already past fires at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from alarms.alarm_helpers import (
    Harness,
    alarm_site,
    in_thread,
    journal_events,
    run_gateway,
    site,
    until,
)
from gateway.alarms.plan import Plan
from gateway.core.clock import ManualClock, SteppedClock
from gateway.core.events import EventDraft, EventType
from gateway.escalation.delivery import Reporter, SmsRunner
from gateway.escalation.outbound import Outbound
from simulator.hotline import HotlineServer

HOUR = 3600.0
TIMER = {"default": "unacknowledged_after", "after_s": 30}


def press(h: Harness, device: str = "er-1") -> str:
    [event, *_] = h.record(EventDraft(EventType.PRESS, device=device))
    assert event.alarm_id is not None
    return event.alarm_id


def test_police_timer_fires_on_time_when_the_wall_clock_steps_back(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy=TIMER))
    press(h)
    h.clock.advance(2)
    h.clock.step_wall(-HOUR)  # NTP corrects a clock an hour fast
    h.clock.advance(27)
    assert h.fire_timers() == []
    h.clock.advance(1)  # 30 s after the press, as the monotonic clock counts
    assert [p["reason"] for p in h.plans()] == [] and h.fire_timers()
    assert [p["reason"] for p in h.plans()] == ["timer"]


def test_police_timer_never_fires_early_when_the_wall_clock_steps_forward(
        tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy=TIMER))
    alarm_id = press(h)
    h.clock.step_wall(HOUR)
    h.clock.advance(1)
    assert h.fire_timers() == [] and h.alarm(alarm_id).state == "raised"
    h.clock.advance(29)
    assert h.fire_timers() and [p["reason"] for p in h.plans()] == ["timer"]


def test_after_a_restart_a_deadline_already_past_fires_at_once(tmp_path: Path) -> None:
    config = site(tmp_path, policy=TIMER)
    h = Harness(config)
    press(h)
    later = ManualClock(start=5.0, wall_start=h.clock.wall() + 31)  # down for 31 s
    again = h.restart(later)
    assert again.engine.next_due() == later.monotonic()
    assert again.fire_timers() and [p["reason"] for p in again.plans()] == ["timer"]


def test_sms_rate_limit_is_not_stretched_by_a_step_back(tmp_path: Path) -> None:
    """min_interval_s between two SMS to one number counts monotonic seconds."""
    config = site(tmp_path, policy={"default": "immediate"})
    h = Harness(config)
    press(h, "er-1")
    press(h, "b-0")
    number = "+84901111111"
    plans = [Plan.from_json(p) for p in h.plans()]
    jobs = [(p, next(d for d in p.deliveries if d.target == number)) for p in plans]
    slept: list[float] = []
    sent: list[str] = []

    class Sink:
        async def record(self, draft: EventDraft) -> Any:
            return h.record(draft)

    class Modem:
        async def send_sms(self, to: str, text: str) -> None:
            sent.append(to)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        h.clock.advance(seconds)

    runner = SmsRunner(Modem(), Outbound(config), Reporter(Sink(), h.engine, h.clock),
                       h.clock, sleep, 60)

    async def main() -> None:
        for plan, d in jobs:
            await runner.deliver(plan, d)
            h.clock.step_wall(-HOUR)  # the clock is stepped right after the first SMS

    asyncio.run(main())
    assert sent == [number, number] and sum(slept) <= 60


def test_gateway_escalates_and_reports_on_time_across_a_step_back(
        tmp_path: Path, broker, hotline: HotlineServer) -> None:  # type: ignore[no-untyped-def]
    """A real gateway whose wall clock runs an hour fast until NTP steps it back, right
    after a press: the police timer (2 s) and the periodic test report (about 2 s) still
    fire on time. (The hotline checks the signed timestamp, so the clock is right after.)"""
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url,
                        policy='default = "unacknowledged_after"\nafter_s = 2')
    config.write_text(config.read_text().replace(
        "interval_s = 2\n", "interval_s = 2\nperiodic_test_h = 0.0006\n", 1))
    clock = SteppedClock()
    clock.step_wall(HOUR)
    seen: dict[str, float] = {}

    async def body(gw: Any, factory: Any) -> None:
        mock = factory.pin(17)
        await in_thread(lambda: (mock.drive_low(), mock.drive_high()))
        await until(lambda: journal_events(tmp_path, "press"), 5, "the press")
        seen["pressed"] = time.monotonic()
        clock.step_wall(-HOUR)
        assert await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        seen["delivered"] = time.monotonic()
        await until(lambda: journal_events(tmp_path, "test_report"), 10, "a test report")

    run_gateway(config, body, clock=clock)
    assert seen["delivered"] - seen["pressed"] >= 1.9  # not before the desk's window
    [decided] = [e for e in journal_events(tmp_path, "alarm_state")
                 if "escalation" in e["detail"]]
    assert decided["detail"]["escalation"]["reason"] == "timer"
