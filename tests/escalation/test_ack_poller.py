"""The gateway's ack long-poll against a real HTTP server on 127.0.0.1 that answers badly
before it answers well: every failure counted, one trouble after three in a row, cleared by
the next good page; acks and cursor committed together; the poll signed over the path the
receiver sees (below the receiver URL's own base path)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from conftest import free_port

from gateway.core.clock import SystemClock
from gateway.core.events import EventDraft, EventType
from gateway.escalation.acks import CURSOR_KEY, AckPoller, AckSource
from gateway.escalation.wire import get_signing_bytes, verify_signature

SECRET = b"bi-mat-cua-benh-vien-a-0123456789"
ACK = {"cursor": 5, "escalation_id": "e1", "alarm_id": "a1", "code": "0427",
       "state": "police_acknowledged", "by": "Trung úy Hùng", "ts": "2026-01-01T00:00:00.000Z",
       "note": ""}


def test_bad_answers_then_a_page() -> None:
    asyncio.run(_bad_answers_then_a_page(free_port()))


async def _bad_answers_then_a_page(unused_tcp_port: int) -> None:
    script: list[tuple[int, bytes]] = [
        (500, b"upstream\nexploded"), (200, b"{not json"), (200, b'{"cursor": -1, "acks": []}'),
        (200, json.dumps({"cursor": 5, "acks": [ACK]}).encode()),
        (200, b'{"cursor": 5, "acks": []}'),
    ]
    seen: list[dict[str, Any]] = []
    enough = asyncio.Event()

    async def acks(request: web.Request) -> web.Response:
        signed = get_signing_bytes(request.path_qs)
        seen.append({"query": dict(request.query), "why": verify_signature(
            SECRET, request.headers.get("X-Alarm-Timestamp"),
            request.headers.get("X-Alarm-Signature"), signed, SystemClock().wall())})
        if len(seen) >= 7:
            enough.set()
        if not script:  # as a held poll with no news would, only sooner
            await asyncio.sleep(0.05)
        status, body = script.pop(0) if script else (200, b'{"cursor": 5, "acks": []}')
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_get("/police/v1/acks", acks)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    commits: list[tuple[list[EventDraft], dict[str, Any]]] = []
    troubles: list[tuple[str, str | None]] = []
    sleeps: list[float] = []

    async def commit(drafts: list[EventDraft], kv: dict[str, Any]) -> None:
        commits.append((drafts, kv))

    async def trouble(source: str, reason: str | None) -> None:
        troubles.append((source, reason))

    async def sleep(s: float) -> None:
        sleeps.append(s)

    source = AckSource("ca-phuong", f"http://127.0.0.1:{unused_tcp_port}/police/v1/alarms",
                       "bv-a", SECRET, wait_s=1)
    poller = AckPoller(source, 3, commit, trouble, SystemClock(), sleep=sleep, rand=lambda: 1.0)
    task = asyncio.create_task(poller.run())
    try:
        async with asyncio.timeout(10):
            await enough.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
    assert all(s["why"] is None for s in seen)  # every poll correctly signed
    assert [s["query"]["after"] for s in seen[:6]] == ["3", "3", "3", "3", "5", "5"]
    assert seen[0]["query"] == {"site": "bv-a", "after": "3", "wait": "1"}
    assert sleeps == [1.0, 2.0, 4.0]  # capped, jittered (rand=1) exponential backoff
    assert [t[0] for t in troubles] == ["receiver:ca-phuong"] * 2
    assert "malformed ack page" in str(troubles[0][1]) and troubles[1][1] is None
    assert len(commits) == 1  # the empty page after it commits nothing
    drafts, kv = commits[0]
    assert kv == {CURSOR_KEY + "ca-phuong": 5}
    assert [(d.type, d.alarm_id, (d.detail or {})["by"]) for d in drafts] == [
        (EventType.POLICE_ACK, "a1", "Trung úy Hùng")]
    assert poller.health()["cursor"] == 5 and poller.health()["failures"] == 0
