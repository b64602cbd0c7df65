"""Alarm commands: strict parsing, rejected ones journaled, valid ones applied."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarms.alarm_helpers import Harness, detail, site
from gateway.alarms.commands import Command, CommandService, parse_command
from gateway.core.errors import CommandError
from gateway.core.events import EventDraft, EventType


class Sink:
    def __init__(self, h: Harness) -> None:
        self.h = h

    async def record(self, draft: EventDraft) -> Any:
        return self.h.record(draft)[0]


def service(tmp_path: Path) -> tuple[Harness, CommandService, str]:
    h = Harness(site(tmp_path))
    alarm_id = h.record(EventDraft(EventType.PRESS, device="er-1"))[0].alarm_id
    assert alarm_id is not None
    return h, CommandService(h.engine, Sink(h)), alarm_id


def send(svc: CommandService, alarm_id: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return asyncio.run(svc.handle(alarm_id, raw, "mqtt"))


def test_valid_commands_apply_in_order(tmp_path: Path) -> None:
    h, svc, alarm_id = service(tmp_path)
    answer = send(svc, alarm_id, {"action": "ack", "by": "Bảo vệ Hùng", "note": "đang tới"})
    assert answer["ok"] and answer["alarm"]["state"] == "acknowledged"
    event = h.of_type("alarm_state")[-1]
    assert detail(event)["by"] == "Bảo vệ Hùng" and detail(event)["note"] == "đang tới"
    assert detail(event)["origin"] == "mqtt" and event.alarm_id == alarm_id
    assert send(svc, alarm_id, {"action": "resolve", "by": "Hùng"})["ok"]
    assert h.leds[-1] == ("er-1", 0)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\xff\xfe{", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"action": "ack", "by": "x", "nonsense": 1}', "unknown key"),
    (b'{"action": "ACK", "by": "x"}', "unknown action"),
    (b'{"action": 1, "by": "x"}', "'action' must be a string"),
    (b'{"action": "ack"}', "'by' must be a string"),
    (b'{"action": "ack", "by": "   "}', "must not be empty"),
    (b'{"action": "ack", "by": "a\\u0000b"}', "control characters"),
    (json.dumps({"action": "ack", "by": "x" * 65}).encode(), "longer than 64"),
    (json.dumps({"action": "ack", "by": "x", "note": "n" * 501}).encode(), "longer than 500"),
    (b'{"action": "ack", "by": "x", "note": NaN}', "not JSON"),
    (b" " * 5000, "exceeds"),
])
def test_malformed_commands_rejected_and_journaled(tmp_path: Path, payload: bytes,
                                                   reason: str) -> None:
    h, svc, alarm_id = service(tmp_path)
    answer = send(svc, alarm_id, payload)
    assert not answer["ok"] and reason in answer["error"]
    rejected = h.of_type("rejected_command")
    assert len(rejected) == 1 and reason in detail(rejected[0])["reason"]
    assert detail(rejected[0])["origin"] == "mqtt" and rejected[0].alarm_id == alarm_id
    assert h.alarm(alarm_id).state == "raised" and len(h.of_type("alarm_state")) == 1


def test_unknown_alarm_and_impossible_transitions(tmp_path: Path) -> None:
    h, svc, alarm_id = service(tmp_path)
    answer = send(svc, "no-such-alarm", {"action": "ack", "by": "x"})
    assert "unknown alarm" in answer["error"]
    assert h.of_type("rejected_command")[-1].alarm_id is None
    assert "malformed alarm id" in send(svc, "a/b#", {"action": "ack", "by": "x"})["error"]
    assert send(svc, alarm_id, {"action": "ack", "by": "x"})["ok"]
    assert send(svc, alarm_id, {"action": "ack", "by": "y"})["ok"]  # a second take: history
    assert send(svc, alarm_id, {"action": "resolve", "by": "x"})["ok"]
    for action in ("ack", "escalate", "resolve"):
        answer = send(svc, alarm_id, {"action": action, "by": "x"})
        assert "resolved" in answer["error"]
    assert len(h.of_type("rejected_command")) == 5
    assert h.devices.flags("er-1").alarm is False  # type: ignore[union-attr]


def test_escalate_command_then_in_progress(tmp_path: Path) -> None:
    h, svc, alarm_id = service(tmp_path)
    assert send(svc, alarm_id, {"action": "escalate", "by": "Trưởng ca"})["ok"]
    plan = h.plans()[0]
    assert plan["reason"] == "command" and detail(h.of_type("alarm_state")[-1])["by"] == "Trưởng ca"
    answer = send(svc, alarm_id, {"action": "escalate", "by": "Trưởng ca"})
    assert "already under way" in answer["error"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_raises_anything_but_command_error(data: bytes) -> None:
    try:
        command = parse_command(data)
    except CommandError:
        return
    assert isinstance(command, Command)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["action", "by", "note", "x"]), JSONISH, max_size=4))
def test_parser_accepts_only_well_typed_objects(obj: dict[str, Any]) -> None:
    try:
        command = parse_command(json.dumps(obj).encode())
    except CommandError:
        return
    assert set(obj) <= {"action", "by", "note"}
    assert command.action in ("ack", "escalate", "resolve")
    assert 0 < len(command.by) <= 64 and len(command.note) <= 500
