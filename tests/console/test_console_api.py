"""The console's HTTP API on a real 127.0.0.1 port: login, sessions, CSRF, hostile input,
and the live stream. Time for sessions and throttling comes from a ManualClock."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from argon2 import PasswordHasher

from console.console_helpers import GUARD, GUARD_PASSWORD, console_harness, site_config
from gateway.alarms.commands import CommandService
from gateway.alarms.engine import AlarmEngine
from gateway.cli import main
from gateway.console.service import split_listen
from gateway.core.events import EventDraft, EventType
from gateway.devices.state import DeviceStates
from gateway.features.console import build_console
from gateway.journal.recorder import Recorder
from gateway.journal.store import Batch

STEP_S = 5.0  # bound on any single wait in these tests (seconds)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


async def sse_events(resp: ClientResponse, want: str, *, match: Any = None) -> dict[str, Any]:
    """Read the stream until an event named ``want`` (whose data satisfies ``match``)."""
    name, data = "", []
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), STEP_S)).decode()
        if not line:
            raise AssertionError(f"stream ended before a {want!r} event")
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "":
            if name == want:
                doc = json.loads("\n".join(data)) if data else {}
                if match is None or match(doc):
                    return doc
            name, data = "", []


# -- login and sessions ------------------------------------------------------------------------
def test_login_good_and_bad(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            bad = await h.client.post("/api/login", json={"name": GUARD, "password": "sai"})
            assert bad.status == 401
            assert "Set-Cookie" not in bad.headers
            unknown = await h.client.post("/api/login", json={"name": "ai-do", "password": "x"})
            assert unknown.status == 401
            assert (await h.client.get("/api/session")).status == 401

            good = await h.client.post("/api/login",
                                       json={"name": GUARD, "password": GUARD_PASSWORD})
            assert good.status == 200
            cookie = good.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Secure" not in cookie  # plain HTTP on loopback
            body = await good.json()
            assert body["name"] == GUARD and len(body["csrf"]) >= 32

            me = await h.client.get("/api/session")
            assert me.status == 200
            assert (await me.json())["csrf"] == body["csrf"]

    run(scenario())


def test_login_delays_grow_and_the_right_password_works_after_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            for _ in range(5):  # five typos cost nothing
                resp = await h.client.post("/api/login", json={"name": GUARD, "password": "x"})
                assert resp.status == 401
            throttled = await h.client.post("/api/login",
                                            json={"name": GUARD, "password": GUARD_PASSWORD})
            assert throttled.status == 429
            assert throttled.headers["Retry-After"] == "1"
            h.clock.advance(1)
            await h.login()  # the delay passed: the right password works, and clears it
            for _ in range(5):
                assert (await h.client.post("/api/login", json={"name": GUARD,
                                                                "password": "x"})).status == 401

    run(scenario())


def test_session_expires(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path, session_minutes=10) as h:
            csrf = await h.login()
            h.clock.advance(10 * 60 - 1)
            assert (await h.client.get("/api/session")).status == 200
            h.clock.advance(2)
            assert (await h.client.get("/api/session")).status == 401
            resp = await h.command("a1", {"action": "ack"}, csrf)
            assert resp.status == 401
            assert h.calls == []

    run(scenario())


# -- actions -----------------------------------------------------------------------------------
def test_action_carries_the_operator_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            csrf = await h.login()
            resp = await h.command("a1", {"action": "ack", "note": " đã tới nơi "}, csrf)
            assert resp.status == 200
            assert (await resp.json())["ok"] is True
            assert h.calls == [("a1", {"action": "ack", "by": GUARD, "note": "đã tới nơi"},
                                f"console:{GUARD}")]

    run(scenario())


def test_action_without_csrf_token_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            await h.login()
            missing = await h.command("a1", {"action": "ack"}, None)
            assert missing.status == 403
            wrong = await h.command("a1", {"action": "ack"}, "x" * 43)
            assert wrong.status == 403
            assert (await wrong.json())["ok"] is False
            assert h.calls == []

    run(scenario())


def test_logged_out_action_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            never = await h.command("a1", {"action": "resolve"}, "anything")
            assert never.status == 401
            csrf = await h.login()
            out = await h.client.post("/api/logout", headers={"X-CSRF-Token": csrf})
            assert out.status == 200
            after = await h.command("a1", {"action": "resolve"}, csrf)
            assert after.status == 401
            assert h.calls == []

    run(scenario())


def test_unknown_alarm_is_refused_with_the_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            csrf = await h.login()
            resp = await h.command("no-such-alarm", {"action": "ack"}, csrf)
            assert resp.status == 409
            body = await resp.json()
            assert body["ok"] is False and "unknown alarm" in body["error"]

    run(scenario())


def test_resolve_needs_a_note_and_a_confirmation_once_the_police_are_called(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            csrf = await h.login()
            bare = await h.command("a1", {"action": "resolve"}, csrf)
            assert bare.status == 400 and (await bare.json())["needs_note"] is True
            blank = await h.command("a1", {"action": "resolve", "note": "   "}, csrf)
            assert blank.status == 400
            assert h.calls == []
            h.alarms["a1"] = {"id": "a1", "state": "escalated", "escalations": []}
            unconfirmed = await h.command("a1", {"action": "resolve", "note": "Báo nhầm"}, csrf)
            assert unconfirmed.status == 409
            assert (await unconfirmed.json())["needs_confirmation"] is True
            assert h.calls == []
            done = await h.command("a1", {"action": "resolve", "note": "Báo nhầm",
                                          "confirm": True}, csrf)
            assert done.status == 200
            assert h.calls == [("a1", {"action": "resolve", "by": GUARD, "note": "Báo nhầm"},
                                f"console:{GUARD}")]

    run(scenario())


def test_hostile_inputs_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            csrf = await h.login()
            url = "/api/alarms/a1/command"
            headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
            huge = json.dumps({"action": "ack", "note": "x" * 1_000_000})
            assert (await h.client.post(url, data=huge, headers=headers)).status == 413
            assert (await h.client.post(url, data=b"{not json", headers=headers)).status == 400
            assert (await h.client.post(url, data=b"\xff\xfe", headers=headers)).status == 400
            assert (await h.client.post(url, data=b"[1, 2]", headers=headers)).status == 400
            for body in ({"action": "delete"}, {"action": ["ack"]}, {},
                         {"action": "ack", "note": "x" * 501}, {"action": "ack", "note": 5}):
                resp = await h.client.post(url, json=body, headers={"X-CSRF-Token": csrf})
                assert resp.status == 400, body
                assert (await resp.json())["ok"] is False
            form = await h.client.post(url, data={"action": "ack"},
                                       headers={"X-CSRF-Token": csrf})
            assert form.status == 415
            login = "/api/login"
            assert (await h.client.post(login, data="x" * 100_000,
                                        headers={"Content-Type": "application/json"})
                    ).status == 413
            assert (await h.client.post(login, data="{", headers={"Content-Type":
                                                                  "application/json"})
                    ).status == 400
            assert (await h.client.post(login, json={"name": GUARD, "password": "p" * 300})
                    ).status == 400
            assert h.calls == []

    run(scenario())


def test_commands_go_through_the_alarm_engine(tmp_path: Path) -> None:
    """With the real command service: a refused command is journaled with the operator."""

    async def scenario() -> None:
        config = site_config(tmp_path)
        service: dict[str, CommandService] = {}

        async def handle(alarm_id: str, payload: bytes, origin: str) -> dict[str, Any]:
            return await service["s"].handle(alarm_id, payload, origin)

        async with console_harness(tmp_path, handler=handle) as h:
            recorder = Recorder(config, h.journal, h.clock)
            engine = AlarmEngine(config, h.clock)
            recorder.add_processor(DeviceStates(config))
            recorder.add_processor(engine)
            service["s"] = CommandService(engine, recorder)
            press = await recorder.record(EventDraft(EventType.PRESS, device="er-desk-1"))
            assert press.alarm_id is not None
            csrf = await h.login()
            ok = await h.command(press.alarm_id, {"action": "ack", "note": ""}, csrf)
            assert ok.status == 200
            assert (await ok.json())["alarm"]["history"][-1]["by"] == GUARD
            assert (await h.command(press.alarm_id, {"action": "resolve", "note": "Báo nhầm"},
                                    csrf)).status == 200
            again = await h.command(press.alarm_id, {"action": "ack"}, csrf)
            assert again.status == 409
            assert "resolved" in (await again.json())["error"]
            events = h.journal.events_after(0)
            refused = [e for e in events if e.type == EventType.REJECTED_COMMAND]
            assert refused and refused[-1].detail is not None
            assert refused[-1].detail["origin"] == f"console:{GUARD}"

    run(scenario())


# -- the live stream ---------------------------------------------------------------------------
def test_stream_needs_a_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            assert (await h.client.get("/api/stream")).status == 401

    run(scenario())


def test_stream_delivers_changes_as_committed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            await h.login()
            stream = await h.client.get("/api/stream")
            assert stream.status == 200
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            snapshot = await sse_events(stream, "snapshot")
            assert snapshot["user"] == GUARD and snapshot["alarms"] == []
            assert snapshot["site"]["wards"] == {"cap-cuu": "Khoa Cấp cứu"}

            doc = {"id": "a9", "code": "0427", "state": "raised", "type": "panic",
                   "device": "er-desk-1", "ward": "cap-cuu", "room": "Quầy tiếp đón",
                   "drill": False, "raised_at": "2026-09-21T03:00:00.000Z", "press_count": 1,
                   "escalations": [], "history": []}
            device = {"device": "er-desk-1", "ward": "cap-cuu", "room": "Quầy tiếp đón",
                      "kind": "panic_button", "state": "alarm", "battery_mv": None,
                      "last_seen": None}
            await h.journal.commit(Batch(retained={"alarm/a9": doc,
                                                   "device/er-desk-1/state": device}))
            alarm = await sse_events(stream, "alarm")
            assert alarm["id"] == "a9" and alarm["room"] == "Quầy tiếp đón"
            assert (await sse_events(stream, "device"))["state"] == "alarm"
            stream.close()

    run(scenario())


def test_stream_ends_with_the_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path, session_minutes=1) as h:
            await h.login()
            stream = await h.client.get("/api/stream")
            await sse_events(stream, "snapshot")
            h.clock.advance(61)
            await h.journal.commit(Batch(retained={"alarm/a2": {"id": "a2", "state": "raised"}}))
            await sse_events(stream, "expired")
            stream.close()

    run(scenario())


def test_page_and_security_headers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            page = await h.client.get("/")
            assert page.status == 200
            html = await page.text()
            assert "MẤT KẾT NỐI" in html
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
            assert page.headers["X-Content-Type-Options"] == "nosniff"
            script = await h.client.get("/static/console.js")
            assert script.status == 200
            assert (await h.client.get("/static/../auth.py")).status in (403, 404)

    run(scenario())


# -- wiring and the command line ---------------------------------------------------------------
def test_console_is_built_only_when_enabled(tmp_path: Path) -> None:
    class FakeGateway:
        def __init__(self, console: dict[str, Any] | None) -> None:
            self.config = site_config(tmp_path, console)
            if console is None:
                self.config = self.config.model_copy(update={"console": None})
            self.tasks: list[Any] = []

        def add_task(self, factory: Any) -> None:
            self.tasks.append(factory)

    async def scenario() -> None:
        for console in (None, {"enabled": False}):
            gw = FakeGateway(console)
            await build_console(gw)  # type: ignore[arg-type]
            assert gw.tasks == []

    run(scenario())
    assert split_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_listen("[::1]:9443") == ("::1", 9443)


def test_hash_password_verb(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("mật khẩu dài\n"))
    assert main(["hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "mật khẩu dài")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["hash-password"]) == 2
