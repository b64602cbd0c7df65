"""Helpers for the console tests: a console app over a real journal, with fast hashes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from gateway.config.schema import ConsoleUser, SiteConfig, validate_config
from gateway.console.access import DisplayAccess, LoginJournal
from gateway.console.auth import Accounts, PasswordChecks
from gateway.console.feed import LiveFeed
from gateway.console.login import Auth
from gateway.console.server import ConsoleApp
from gateway.console.sessions import FILE_NAME as SESSIONS_FILE
from gateway.console.sessions import Sessions
from gateway.console.throttle import LoginThrottle
from gateway.core.clock import ManualClock
from gateway.core.ports import EventSink
from gateway.journal.recorder import Recorder
from gateway.journal.store import Journal

CHROMIUM = "/usr/bin/chromium"
#: --autoplay-policy: the documented desk and kiosk set-up, so a screen restarted at night
#: sounds alarms without anyone clicking first
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

#: cheap parameters, so a test login costs milliseconds (production hashes use the defaults)
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GUARD, GUARD_PASSWORD = "Nguyễn Văn An", "mật-khẩu-bảo-vệ"
GUARD_HASH = FAST.hash(GUARD_PASSWORD)  # one hash, as one config file would hold

Handler = Callable[[str, bytes, str], Coroutine[Any, Any, dict[str, Any]]]

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_user(name: str, password: str) -> str:
    """A ``[[console.users]]`` TOML entry with a cheap argon2id hash."""
    return f'[[console.users]]\nname = "{name}"\npassword_hash = "{FAST.hash(password)}"\n'


def site_config(tmp_path: Path, console: dict[str, Any] | None = None) -> SiteConfig:
    raw: dict[str, Any] = {
        "site": {"id": "bv-test", "name": "Bệnh viện Thử nghiệm"},
        "wards": [{"id": "cap-cuu", "name": "Khoa Cấp cứu"}],
        "devices": [{"id": "er-desk-1", "ward": "cap-cuu", "room": "Quầy tiếp đón", "pin": 17}],
        "storage": {"path": str(tmp_path / "var")},
        "console": console if console is not None else {},
    }
    return validate_config(raw, base_dir=tmp_path)


@dataclass
class Harness:
    """A console app on a real 127.0.0.1 port; ``calls`` records what reached the handler,
    ``alarms`` is what the app reads as alarms' current documents."""

    client: TestClient[Any, Any]
    journal: Journal
    clock: ManualClock
    feed: LiveFeed
    app: ConsoleApp
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def login(self, name: str = GUARD, password: str = GUARD_PASSWORD) -> str:
        """Log in; return the session's CSRF token."""
        resp = await self.client.post("/api/login", json={"name": name, "password": password})
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["csrf"])

    async def command(self, alarm_id: str, body: Any, csrf: str | None) -> ClientResponse:
        headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
        return await self.client.post(f"/api/alarms/{alarm_id}/command", json=body,
                                      headers=headers)


def recording_handler(calls: list[tuple[str, dict[str, Any], str]]) -> Handler:
    """A command handler that knows one alarm, ``a1``, and records every call."""

    async def handle(alarm_id: str, payload: bytes, origin: str) -> dict[str, Any]:
        calls.append((alarm_id, json.loads(payload), origin))
        if alarm_id != "a1":
            return {"ok": False, "error": f"unknown alarm {alarm_id!r}"}
        return {"ok": True, "alarm": {"id": "a1", "state": "acknowledged"}}

    return handle


def make_auth(tmp_path: Path, clock: ManualClock, *, session_minutes: int = 10,
              display_addresses: tuple[str, ...] = (), display_token: str | None = None,
              sink: EventSink | None = None, workers: int = 1, waiting: int = 4,
              isolated: bool = False) -> Auth:
    """The console's auth with one user (:data:`GUARD`, a cheap hash), sessions stored in
    ``tmp_path/console-sessions.json``; password checks in threads unless ``isolated``
    (the gateway's own worker process, as in production)."""
    accounts = Accounts([ConsoleUser(name=GUARD, password_hash=GUARD_HASH)])
    sessions = Sessions(clock, session_minutes, tmp_path / SESSIONS_FILE, accounts.fingerprint)
    sessions.load()
    return Auth(accounts, PasswordChecks(accounts, workers=workers, waiting=waiting,
                                         isolated=isolated), sessions,
                LoginThrottle(clock), DisplayAccess(list(display_addresses), display_token),
                LoginJournal(sink, clock))


@contextlib.asynccontextmanager
async def console_harness(tmp_path: Path, *, handler: Handler | None = None,
                          session_minutes: int = 10, display_addresses: tuple[str, ...] = (),
                          display_token: str | None = None, record_logins: bool = False,
                          clock: ManualClock | None = None, workers: int = 1,
                          waiting: int = 4) -> AsyncIterator[Harness]:
    """A console over a fresh journal, with one user (:data:`GUARD`) and a manual clock;
    ``record_logins`` journals failed logins through a recorder on that journal."""
    config = site_config(tmp_path)
    clock = clock or ManualClock(wall_start=1_790_000_000.0)
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.open()
    await journal.start()
    calls: list[tuple[str, dict[str, Any], str]] = []
    alarms: dict[str, dict[str, Any]] = {}
    command = handler or recording_handler(calls)
    feed = LiveFeed(journal, config, clock, lambda: {"version": "test", "uptime_s": 1})
    sink = Recorder(config, journal, clock) if record_logins else None
    auth = make_auth(tmp_path, clock, session_minutes=session_minutes,
                     display_addresses=display_addresses, display_token=display_token,
                     sink=sink, workers=workers, waiting=waiting)
    app = ConsoleApp(feed, auth, lambda: command, alarms.get)
    feed.start()
    pump = asyncio.create_task(feed.run())
    client: TestClient[Any, Any] = TestClient(TestServer(app.build(), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Harness(client, journal, clock, feed, app, calls, alarms)
    finally:
        feed.stop()
        auth.checks.close()
        await client.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await journal.stop()
        journal.close()
