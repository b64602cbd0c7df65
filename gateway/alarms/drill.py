"""Drills: a real alarm path exercised end to end, marked ``"drill": true`` everywhere.

``alarm-gateway drill -c FILE [--device ID]`` asks the running gateway over its control
socket (:func:`request_drill`); the gateway's ``drill`` command (:func:`drill_command`)
raises a drill alarm for the device, which goes to the drill targets where configured
(``escalation.http.drill_url``, ``escalation.sms.drill_numbers``) with ``[DIỄN TẬP]`` in
the SMS. A drill never shares an alarm with a real one on the same device.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.config.schema import SiteConfig
from gateway.core.errors import CommandError
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import EventSink

EXIT_OK, EXIT_NO_GATEWAY, EXIT_UNKNOWN_DEVICE = 0, 1, 2
UNKNOWN_DEVICE = "unknown device"
TIMEOUT_S = 10.0


def request_drill(config: SiteConfig, device: str | None) -> int:
    """Client side: 0 once the gateway confirmed, 1 if none answered in 10 s (or it
    refused), 2 for a device the gateway does not know."""
    from gateway.ops.control import request_sync
    from gateway.paths import control_path

    try:
        answer = request_sync(control_path(config), {"cmd": "drill", "device": device},
                              timeout=TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"no gateway answered at {control_path(config)} ({type(exc).__name__})",
              file=sys.stderr)
        return EXIT_NO_GATEWAY
    if answer.get("ok"):
        print(f"drill alarm {answer.get('code')} raised on {answer.get('device')} "
              f"(alarm {answer.get('alarm_id')})")
        return EXIT_OK
    error = str(answer.get("error", "the gateway refused the drill"))
    print(error, file=sys.stderr)
    return EXIT_UNKNOWN_DEVICE if error.startswith(UNKNOWN_DEVICE) else EXIT_NO_GATEWAY


def drill_command(
    config: SiteConfig, engine: AlarmEngine, sink: EventSink
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """Server side: the control command ``{"cmd": "drill", "device": ID|null}``.

    It answers once the drill press and its alarm are committed; the escalation follows
    as for any alarm (a drill is always ``immediate``).
    """

    async def drill(request: dict[str, Any]) -> dict[str, Any]:
        device = request.get("device")
        if device is None and config.devices:
            device = config.devices[0].id
        if not isinstance(device, str) or config.device(device) is None:
            known = ", ".join(d.id for d in config.devices) or "none configured"
            raise CommandError(f"{UNKNOWN_DEVICE} {device!r}; known: {known}")
        event = await sink.record(EventDraft(EventType.PRESS, device=device, drill=True))
        alarm = engine.get(event.alarm_id or "")
        if alarm is None:
            raise CommandError(f"no drill alarm was raised for {device!r}")
        return {"drill": True, "alarm_id": alarm.id, "code": alarm.code, "device": device}

    return drill
