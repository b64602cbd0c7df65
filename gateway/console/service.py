"""The console's web server: serves a :class:`ConsoleApp` on ``[console].listen``.

The web server never takes the gateway down: if its port is taken it logs the reason and
tries again every :data:`BIND_RETRY_S` seconds while the alarm path carries on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web

from gateway.config.schema import Console, SiteConfig
from gateway.console.server import ConsoleApp
from gateway.core.errors import ConfigError

log = logging.getLogger(__name__)

BIND_RETRY_S = 10.0
SHUTDOWN_S = 2.0  # seconds open requests get to finish when the gateway stops


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
        self.app.auth.checks.warm()
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
