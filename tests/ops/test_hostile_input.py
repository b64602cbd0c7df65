"""Hostile values at the gateway's edges: a console URL cannot forge a log line, and the
control socket's ``click`` refuses a hold time that would never end."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

from conftest import write_site
from console.console_helpers import console_harness

from gateway.app import control_path
from gateway.ops.control import request
from gateway.ops.logs import KeyValueFormatter

from .helpers import running_gateway


def test_a_console_url_with_a_newline_cannot_forge_a_log_line(tmp_path: Path) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    async def scenario() -> None:
        async with console_harness(tmp_path) as h:
            csrf = await h.login()
            path = "a1%0Ats=2026-11-24T10:00:00.000Z%20level=info%20logger=gateway.app" \
                   "%20event=gateway_ready%0D%1B[2J"
            resp = await h.client.post(f"/api/alarms/{path}/command", json={"action": "ack"},
                                       headers={"X-CSRF-Token": csrf})
            assert resp.status == 409  # no such alarm: refused, and logged

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = out.getvalue().splitlines()
    command = [line for line in lines if "event=console_command" in line]
    assert len(command) == 1
    assert all(line.startswith("ts=") for line in lines)
    assert not [line for line in lines if line.endswith("event=gateway_ready")]
    assert 'alarm="a1\\nts=2026-11-24T10:00:00.000Z level=info' in command[0]
    assert "\\r\\x1b[2J" in command[0] and "\x1b" not in out.getvalue()


def test_click_refuses_a_hold_time_that_is_not_a_sane_number(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with running_gateway(write_site(tmp_path, broker.port)) as gw:
            path = control_path(gw.config)
            for seconds in (1e308, float("nan"), float("inf"), -1, "0.1", True):
                answer = await request(path, {"cmd": "click", "device": "er-desk-1",
                                              "seconds": seconds}, timeout=3)
                assert answer["ok"] is False, seconds
                assert "'seconds' must be" in answer["error"]
                assert gw.gpio.led("er-desk-1") == 0  # nothing was pressed
            fine = await request(path, {"cmd": "click", "device": "er-desk-1", "seconds": 0},
                                 timeout=3)
            assert fine["ok"] is True

    asyncio.run(scenario())
