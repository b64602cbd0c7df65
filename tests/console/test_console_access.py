"""Who may see and act on the console, over real HTTP on 127.0.0.1: sessions that survive a
restart, wall screens without login, login throttling that never locks the desk out, a
login flood bounded and journaled. Time comes from a ManualClock."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from console.console_helpers import (
    GUARD,
    GUARD_HASH,
    GUARD_PASSWORD,
    console_harness,
)
from console.test_console_api import run, sse_events
from gateway.config.schema import ConsoleUser
from gateway.console import argon2_worker
from gateway.console.auth import Accounts, PasswordChecks
from gateway.console.login import COOKIE, DISPLAY_COOKIE
from gateway.console.sessions import FILE_NAME
from gateway.console.throttle import LoginThrottle, Rule
from gateway.core.clock import ManualClock
from gateway.core.events import EventType

TOKEN = "wall-screen-token-0123456789"


async def _login_cookie(client: Any) -> tuple[str, str]:
    resp = await client.post("/api/login", json={"name": GUARD, "password": GUARD_PASSWORD})
    assert resp.status == 200
    return resp.cookies[COOKIE].value, str((await resp.json())["csrf"])


def test_a_session_survives_a_restart_and_is_stored_owner_only(tmp_path: Path) -> None:
    clock = ManualClock(wall_start=1_790_000_000.0)

    async def scenario() -> None:
        async with console_harness(tmp_path, clock=clock) as first:
            token, csrf = await _login_cookie(first.client)
        stored = tmp_path / FILE_NAME
        assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
        text = stored.read_text()
        assert token not in text and csrf not in text and GUARD_PASSWORD not in text
        async with console_harness(tmp_path, clock=clock) as second:  # a new process
            url = second.client.make_url("/api/session")
            async with ClientSession(cookies={COOKIE: token}) as browser:
                me = await browser.get(url)
                assert me.status == 200
                assert (await me.json())["csrf"] == csrf and (await me.json())["name"] == GUARD
                ack = await browser.post(second.client.make_url("/api/alarms/a1/command"),
                                         json={"action": "ack"}, headers={"X-CSRF-Token": csrf})
                assert ack.status == 200
                clock.advance(10 * 60)  # the session's ten minutes are over
                assert (await browser.get(url)).status == 401

    run(scenario())


def test_unreadable_or_foreign_session_stores_are_ignored(tmp_path: Path) -> None:
    stored = tmp_path / FILE_NAME

    async def scenario() -> None:
        stored.write_text("{not json")
        async with console_harness(tmp_path) as h:
            assert h.app.auth.sessions.load_error is not None
            await h.login()  # the console runs on, and replaces the file
        data = json.loads(stored.read_text())
        for entry in data["sessions"].values():
            entry["fingerprint"] = "0" * 16  # as if the password had changed since
        stored.write_text(json.dumps(data))
        async with console_harness(tmp_path) as h:
            assert len(h.app.auth.sessions) == 0

    run(scenario())


def test_wall_screen_by_address_sees_alarms_but_cannot_act(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path, display_addresses=("127.0.0.1",)) as h:
            me = await h.client.get("/api/session")
            assert me.status == 401 and (await me.json())["display"] is True
            stream = await h.client.get("/api/stream")
            snapshot = await sse_events(stream, "snapshot")
            assert snapshot["role"] == "display" and snapshot["user"] is None
            assert (await sse_events(stream, "ping"))["now"]
            stream.close()
            refused = await h.command("a1", {"action": "ack"}, "x")
            assert refused.status == 401 and h.calls == []

    run(scenario())


def test_wall_screen_by_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path, display_token=TOKEN) as h:
            assert (await h.client.get("/api/stream")).status == 401
            wrong = await h.client.get("/display", params={"token": "guess"},
                                       allow_redirects=False)
            assert wrong.status == 403
            right = await h.client.get("/display", params={"token": TOKEN},
                                       allow_redirects=False)
            assert right.status == 303 and right.headers["Location"] == "/"
            cookie = right.cookies[DISPLAY_COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert TOKEN not in cookie.value
            stream = await h.client.get("/api/stream")
            assert (await sse_events(stream, "snapshot"))["role"] == "display"
            stream.close()
            assert (await h.command("a1", {"action": "ack"}, "x")).status == 401

    run(scenario())


def test_throttle_is_per_account_and_address_with_growing_delays() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock, account=Rule(free=5), address=Rule(free=10))
    assert [throttle.reserve("An", "127.0.0.1") for _ in range(5)] == [0.0] * 5
    assert throttle.reserve("An", "127.0.0.1") == 1.0
    assert throttle.reserve("Bình", "127.0.0.1") == 0.0  # another guard at the same kiosk
    clock.advance(1)
    assert throttle.reserve("An", "127.0.0.1") == 0.0
    assert throttle.reserve("An", "127.0.0.1") == 2.0  # then 2, 4, … s
    clock.advance(2)
    assert throttle.reserve("An", "127.0.0.1") == 0.0
    assert throttle.reserve("An", "127.0.0.1") == 4.0
    throttle.succeeded("An", "127.0.0.1")
    assert throttle.reserve("An", "127.0.0.1") == 0.0
    for _ in range(20):  # guessing many names from one address is slowed as well
        throttle.reserve(f"user-{_}", "10.0.0.9")
        clock.advance(0.01)
    assert throttle.reserve("someone", "10.0.0.9") > 0
    clock.advance(1000)  # a quiet quarter of an hour: forgotten
    assert throttle.reserve("someone", "10.0.0.9") == 0.0


def test_parallel_login_flood_is_bounded_and_journaled(tmp_path: Path) -> None:
    """40 parallel wrong logins: the attempt is counted before the password is checked, so
    at most five are ever checked; every refusal is counted, and journaled without the
    password tried."""

    async def scenario() -> None:
        async with console_harness(tmp_path, record_logins=True, waiting=64) as h:
            body = {"name": GUARD, "password": "đoán-mò-123"}
            answers = await asyncio.gather(*(h.client.post("/api/login", json=body)
                                              for _ in range(40)))
            statuses = sorted(a.status for a in answers)
            assert statuses.count(401) == 5 and statuses.count(429) == 35
            counters = h.app.auth.journal.counters
            assert (counters.failed, counters.throttled) == (5, 35)
            events = [e for e in h.journal.events_after(0) if e.type == EventType.LOGIN_FAILED]
            assert len(events) == 10  # at most ten a minute; the rest counted
            first = events[0].detail or {}
            assert first["user"] == GUARD and first["address"] == "127.0.0.1"
            assert first["reason"] in ("wrong_password", "throttled")
            raw = json.dumps([e.to_dict() for e in h.journal.events_after(0)],
                             ensure_ascii=False)
            assert "đoán-mò-123" not in raw

    run(scenario())


def test_a_full_password_pool_answers_busy_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path, workers=1, waiting=0) as h:
            checks = h.app.auth.checks
            assert checks.admit()  # the one worker is taken
            busy = await h.client.post("/api/login", json={"name": GUARD,
                                                          "password": GUARD_PASSWORD})
            assert busy.status == 503 and busy.headers["Retry-After"] == "1"
            assert h.app.auth.journal.counters.busy == 1
            await checks.verify(GUARD, "x")  # frees the place
            await h.login()

    run(scenario())


def test_password_checks_run_in_a_lower_priority_process(tmp_path: Path) -> None:
    """argon2 in a thread of the gateway starved the loop that carries the alarms: checks
    run in a spawned worker process, nice-d below the gateway."""
    accounts = Accounts([ConsoleUser(name=GUARD, password_hash=GUARD_HASH)])
    checks = PasswordChecks(accounts, isolated=True)

    async def scenario() -> None:
        try:
            answers = []
            for name, password in [(GUARD, GUARD_PASSWORD), (GUARD, "sai"),
                                   ("không-có", GUARD_PASSWORD)]:
                assert checks.admit()
                answers.append(await checks.verify(name, password))
            assert answers == [True, False, False]
            loop = asyncio.get_running_loop()
            child = await loop.run_in_executor(checks._executor(), os.getpid)
            nice = await loop.run_in_executor(checks._executor(), os.nice, 0)
            assert child != os.getpid() and nice == min(19, os.nice(0) + argon2_worker.NICE)
        finally:
            checks.close()

    run(scenario())
