"""Alarm commands (SPEC §3 ``alarm/<id>/set``): strict parsing and the one path that
applies them, shared by MQTT, the web console and the control socket.

A command that does not parse, names an unknown alarm or asks for an impossible
transition changes nothing: it is journaled as ``rejected_command`` with the reason. The
parser is pure (fuzzed in the tests); :class:`CommandService` checks the command against
the engine and records the resulting event through the recorder.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import rejected
from gateway.core.errors import CommandError
from gateway.core.events import EventDraft
from gateway.core.ports import EventSink

log = logging.getLogger(__name__)

ACTIONS = frozenset({"ack", "escalate", "resolve"})
MAX_PAYLOAD = 4096  # bytes
MAX_BY = 64  # characters
MAX_NOTE = 500  # characters
MAX_ALARM_ID = 64
RETAINED = "retained"  # the rejected_command reason for a retained alarm/<id>/set
_ALARM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Command:
    """A well-formed command: ``by`` names the operator, ``note`` is free text."""

    action: str
    by: str
    note: str = ""


def parse_command(payload: bytes) -> Command:
    """Parse a ``{"action", "by", "note"}`` payload or raise CommandError with the reason."""
    if not isinstance(payload, bytes | bytearray):
        raise CommandError("payload must be bytes")
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"payload is not JSON ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise CommandError("payload must be a JSON object")
    unknown = sorted(set(data) - {"action", "by", "note"})
    if unknown:
        raise CommandError(f"unknown key{'s' if len(unknown) > 1 else ''}: "
                           + ", ".join(repr(k[:40]) for k in unknown[:5]))
    return Command(_action(data.get("action")), _text(data, "by", MAX_BY, required=True),
                   _text(data, "note", MAX_NOTE, required=False))


def _action(value: Any) -> str:
    if not isinstance(value, str):
        raise CommandError("'action' must be a string: ack, escalate or resolve")
    if value not in ACTIONS:
        raise CommandError(f"unknown action {value[:40]!r}: ack, escalate or resolve")
    return value


def _text(data: dict[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise CommandError(f"'{key}' must be a string")
    value = value.strip()
    if required and not value:
        raise CommandError(f"'{key}' must not be empty")
    if len(value) > limit:
        raise CommandError(f"'{key}' is longer than {limit} characters")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in value) or (
        key == "by" and any(ch in value for ch in "\n\t")
    ):
        raise CommandError(f"'{key}' contains control characters")
    return value


def check_alarm_id(alarm_id: str) -> str | None:
    """Why a topic's alarm id is malformed, or None."""
    if not _ALARM_ID.fullmatch(alarm_id or ""):
        return "malformed alarm id in the topic"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


class CommandService:
    """Checks and applies commands; ``handle`` is the gateway's ``command_handler``."""

    def __init__(self, engine: AlarmEngine, sink: EventSink) -> None:
        self._engine = engine
        self._sink = sink
        self.rejected = 0

    async def handle(self, alarm_id: str, payload: bytes, origin: str) -> dict[str, Any]:
        """Apply one command; ``{"ok": True, "alarm": doc}`` or ``{"ok": False, "error"}``.

        ``origin`` says where it came from (``mqtt``, ``console:<user>``, ``control``).
        Validation and the engine's processing run in one loop step, so no other event
        can change the alarm in between.
        """
        try:
            draft = self._draft(alarm_id, payload, origin)
        except CommandError as exc:
            return await self._reject(alarm_id, str(exc), origin, payload)
        await self._sink.record(draft)
        alarm = self._engine.get(alarm_id)
        return {"ok": True, "alarm": alarm.document() if alarm else None}

    def _draft(self, alarm_id: str, payload: bytes, origin: str) -> EventDraft:
        problem = check_alarm_id(alarm_id)
        if problem is not None:
            raise CommandError(problem)
        command = parse_command(payload)
        reason = self._engine.check_command(alarm_id, command.action)
        if reason is not None:
            raise CommandError(reason)
        return self._engine.command_draft(alarm_id, command.action, command.by, command.note,
                                          origin)

    async def _reject(self, alarm_id: str, reason: str, origin: str,
                      payload: bytes) -> dict[str, Any]:
        self.rejected += 1
        known = self._engine.get(alarm_id) is not None
        detail = {"origin": origin, "payload_bytes": len(payload)}
        log.warning("event=command_rejected alarm=%r origin=%s reason=%r",
                    alarm_id[:80], origin, reason)
        await self._sink.record(rejected(alarm_id, reason, detail, known=known))
        return {"ok": False, "error": reason}

    async def on_mqtt(self, alarm_id: str, payload: bytes, *, retained: bool) -> None:
        """``MqttLink.on_command`` callback. A retained command is never applied, not even
        parsed: the broker replays it on every reconnect, and applying it each time
        re-escalated an alarm once per reconnect (SPEC §3)."""
        if retained:
            await self._reject(alarm_id, RETAINED, "mqtt", payload)
            return
        await self.handle(alarm_id, payload, "mqtt")
