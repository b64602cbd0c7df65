"""The console as a gateway feature: built from ``[console]``, served under the gateway's supervisor.

``build_console`` is listed in :mod:`gateway.features`. It does nothing unless the config
has a ``[console]`` section with ``enabled = true``, and imports the web stack (aiohttp,
~9 MiB) only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.app import Gateway


async def build_console(gw: Gateway) -> None:
    """Add the console to ``gw`` when ``[console]`` is present and enabled."""
    settings = gw.config.console
    if settings is None or not settings.enabled:
        return
    from gateway.console.auth import Accounts, LoginLimiter, Sessions
    from gateway.console.feed import LiveFeed
    from gateway.console.server import ConsoleApp
    from gateway.console.service import ConsoleServer, tls_context

    feed = LiveFeed(gw.journal, gw.config, gw.clock, gw.health.document, police_due(gw))
    app = ConsoleApp(
        feed,
        Accounts(list(settings.users)),
        Sessions(gw.clock, settings.session_minutes),
        LoginLimiter(gw.clock),
        lambda: gw.command_handler,
        secure=bool(settings.tls_cert and settings.tls_key),
    )
    server = ConsoleServer(app, settings, tls_context(settings, gw.config))
    gw.add_task(server.run, name="console")
    gw.add_closer(server.stop)
    gw.health.add("console", server.health)


def police_due(gw: Gateway) -> Callable[[str], float | None]:
    """When an alarm's police timer fires (wall-clock unix s), or None: asked of the alarm
    engine when the gateway exposes one as ``alarm_engine``, else read from its stored record."""

    def due(alarm_id: str) -> float | None:
        engine = getattr(gw, "alarm_engine", None)
        if engine is not None and hasattr(engine, "get"):
            alarm = engine.get(alarm_id)
            value = getattr(alarm, "escalate_at", None)
        else:
            stored = gw.journal.kv_all(f"alarm:{alarm_id}").get(f"alarm:{alarm_id}")
            value = stored.get("escalate_at") if isinstance(stored, dict) else None
        return float(value) if isinstance(value, int | float) else None

    return due
