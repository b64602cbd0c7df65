"""The console as a gateway feature: built from ``[console]``, served under the gateway's supervisor.

``build_console`` is listed in :mod:`gateway.features`. It does nothing unless the config
has a ``[console]`` section with ``enabled = true``, and imports the web stack (aiohttp,
~9 MiB) only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.config.schema import Console
    from gateway.console.login import Auth


async def build_console(gw: Gateway) -> None:
    """Add the console to ``gw`` when ``[console]`` is present and enabled."""
    settings = gw.config.console
    if settings is None or not settings.enabled:
        return
    from gateway.console.feed import LiveFeed
    from gateway.console.server import ConsoleApp
    from gateway.console.service import ConsoleServer, tls_context

    feed = LiveFeed(gw.journal, gw.config, gw.clock, gw.health.document, police_due(gw))
    auth = build_auth(gw, settings)
    app = ConsoleApp(feed, auth, lambda: gw.command_handler, alarm_document(gw),
                     secure=bool(settings.tls_cert and settings.tls_key))
    server = ConsoleServer(app, settings, tls_context(settings, gw.config))
    gw.add_task(server.run, name="console")
    gw.add_closer(server.stop)
    gw.health.add("console", server.health)


def build_auth(gw: Gateway, settings: Console) -> Auth:
    """Accounts, password checks, durable sessions, throttle, wall screens, login journal."""
    from gateway.config.schema import read_secret
    from gateway.console.access import DisplayAccess, LoginJournal
    from gateway.console.auth import Accounts, PasswordChecks
    from gateway.console.login import Auth
    from gateway.console.sessions import FILE_NAME as SESSIONS
    from gateway.console.sessions import Sessions
    from gateway.console.throttle import LoginThrottle

    accounts = Accounts(list(settings.users))
    storage = gw.config.resolve(gw.config.storage.path)
    sessions = Sessions(gw.clock, settings.session_minutes, storage / SESSIONS,
                        accounts.fingerprint)
    sessions.load()
    token = (read_secret(gw.config, settings.display_token_file)
             if settings.display_token_file else None)
    return Auth(accounts, PasswordChecks(accounts), sessions, LoginThrottle(gw.clock),
                DisplayAccess(list(settings.display_addresses), token),
                LoginJournal(gw.recorder, gw.clock))


def alarm_document(gw: Gateway) -> Callable[[str], dict[str, Any] | None]:
    """An alarm's current retained document, read from the journal."""

    def read(alarm_id: str) -> dict[str, Any] | None:
        doc = gw.journal.retained_all(f"alarm/{alarm_id}").get(f"alarm/{alarm_id}")
        return doc if isinstance(doc, dict) else None

    return read


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
