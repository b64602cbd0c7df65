"""The console as a gateway feature: built from ``[console]``, served in the gateway's TaskGroup.

``build_console`` is listed in :mod:`gateway.extensions`. It does nothing unless the config
has a ``[console]`` section with ``enabled = true``. The web server never takes the gateway
down: if its port is taken it logs the reason and tries again every
:data:`BIND_RETRY_S` seconds while the alarm path carries on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.config import Console, SiteConfig, read_secret
from gateway.console.access import DisplayAccess, LoginJournal
from gateway.console.auth import Accounts, PasswordChecks
from gateway.console.feed import LiveFeed
from gateway.console.login import Auth
from gateway.console.server import ConsoleApp
from gateway.console.sessions import FILE_NAME as SESSIONS
from gateway.console.sessions import Sessions
from gateway.console.throttle import LoginThrottle
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

BIND_RETRY_S = 10.0
SHUTDOWN_S = 2.0  # seconds open requests get to finish when the gateway stops


async def build_console(gw: Gateway) -> None:
    """Add the console to ``gw`` when ``[console]`` is present and enabled."""
    settings = gw.config.console
    if settings is None or not settings.enabled:
        return
    feed = LiveFeed(gw.journal, gw.config, gw.clock, gw.health.document, police_due(gw))
    auth = build_auth(gw, settings)
    app = ConsoleApp(feed, auth, lambda: gw.command_handler, alarm_document(gw),
                     secure=bool(settings.tls_cert and settings.tls_key))
    server = ConsoleServer(app, settings, tls_context(settings, gw.config))
    gw.add_task(server.run)
    gw.add_closer(server.stop)
    gw.health.add("console", server.health)


def build_auth(gw: Gateway, settings: Console) -> Auth:
    """Accounts, password checks, durable sessions, throttle, wall screens, login journal."""
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


class ConsoleServer:
    """Serves a :class:`ConsoleApp` on ``[console].listen`` until cancelled."""

    def __init__(self, app: ConsoleApp, settings: Console,
                 context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.settings = settings
        self.context = context
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        self.error: str | None = None

    async def run(self) -> None:
        host, port = split_listen(self.settings.listen)
        self.app.feed.start()
        if not len(self.app.auth.accounts):
            log.warning("event=console_no_users hint=%r",
                        "add [[console.users]] (alarm-gateway hash-password)")
        try:
            await self._serve(host, port, self.context)
            await self.app.feed.run()
        finally:
            await self.stop()

    async def _serve(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        while True:
            runner = web.AppRunner(self.app.build(), access_log=None,
                                   shutdown_timeout=SHUTDOWN_S)
            await runner.setup()
            site = web.TCPSite(runner, host, port, ssl_context=context)
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                self.error = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                log.error("event=console_listen_failed listen=%s:%d error=%r retry_s=%g",
                          host, port, self.error, BIND_RETRY_S)
                await asyncio.sleep(BIND_RETRY_S)
                continue
            self._runner, self.error = runner, None
            scheme = "https" if context else "http"
            self.url = f"{scheme}://{_url_host(host)}:{port}/"
            log.info("event=console_listening url=%s", self.url)
            return

    async def stop(self) -> None:
        """End the page streams and close the listener (idempotent)."""
        self.app.feed.stop()
        self.app.auth.checks.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def health(self) -> dict[str, object]:
        auth = self.app.auth
        logins = auth.journal.counters
        return {"listening": self._runner is not None, "url": self.url,
                "pages": self.app.feed.clients, "error": self.error,
                "sessions": len(auth.sessions), "logins_failed": logins.failed,
                "logins_throttled": logins.throttled, "logins_busy": logins.busy}



def tls_context(settings: Console, config: SiteConfig) -> ssl.SSLContext | None:
    """The server TLS context from ``tls_cert``/``tls_key``, or None for plain HTTP."""
    cert, key = settings.tls_cert, settings.tls_key
    if not (cert and key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.resolve(cert), config.resolve(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([("console.tls_cert",
                            f"cannot load the certificate and key: {exc}")]) from exc
    return context


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", 8080)``; ``"[::1]:8080"`` → ``("::1", 8080)``."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
