"""The receiver's composition root: builds every part, serves, supervises, stops cleanly.

One TaskGroup: the gateways' API listener, the wall screen's listener (the same one when both
name the same address), link supervision and housekeeping. SIGTERM or Ctrl-C sets ``stop``;
open long-polls and page streams end, the writer thread drains, the journal closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from argon2 import PasswordHasher

import gateway
from gateway.core.clock import SystemClock
from gateway.core.errors import ConfigError, GatewayError
from gateway.core.ports import Clock
from receiver.acks import AckBoard
from receiver.api import MAX_BODY, GatewayApi
from receiver.config import Listener, ReceiverConfig, split_listen
from receiver.desk import Desk
from receiver.feed import Feed
from receiver.intake import Intake
from receiver.journal_reader import JOURNAL_FILE
from receiver.links import Links
from receiver.screen.auth import Accounts, LoginLimiter, Sessions
from receiver.screen.server import ScreenApp
from receiver.store import Batch, Store

if TYPE_CHECKING:
    from receiver.dc09 import Dc09Listener

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 3600.0
SHUTDOWN_S = 1.0  # seconds open requests get to finish on stop


class Receiver:
    """Every part of one receiver. Constructors only assign; :meth:`run` does the work."""

    def __init__(self, config: ReceiverConfig, *, clock: Clock | None = None,
                 hasher: PasswordHasher | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.store = Store(config.storage_dir / JOURNAL_FILE)
        self.feed = Feed()
        self.acks = AckBoard(self.store)
        self.desk = Desk(config, self.store, self.feed, self.clock, self.acks.notify)
        self.links = Links(config, self.store, self.feed, self.clock)
        self.intake = Intake(self.desk, self.links, self.store, self.clock)
        self.api = GatewayApi(config, self.intake, self.acks, self.clock)
        self.screen = ScreenApp(
            config, self.desk, self.links, self.feed, self.store, self.clock,
            Accounts(list(config.officers), hasher),
            Sessions(self.store, self.clock, config.screen.session_minutes),
            LoginLimiter(self.clock), self.health,
            secure=bool(config.screen.tls_cert and config.screen.tls_key))
        self.dc09 = self._dc09_listener()
        self.urls: dict[str, str] = {}
        self.ready = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        self._started = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        self.store.open()
        try:
            await self.store.start()
            self.desk.load()
            self.links.load()
            await self._journal_start()
            await self._listen()
            await self._listen_dc09()
            self.ready.set()
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self.links.run()), tg.create_task(self._housekeeping())]
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            await self._close()

    async def _journal_start(self) -> None:
        batch = Batch()
        self.store.event(batch, self.clock.wall(), "receiver_start", None,
                         {"version": gateway.__version__, "sites": len(self.config.sites)})
        await self.store.commit(batch)
        log.info("event=receiver_start id=%s sites=%d officers=%d", self.config.receiver.id,
                 len(self.config.sites), len(self.config.officers))

    async def _listen(self) -> None:
        api, screen = self.config.api, self.config.screen
        same = split_listen(api.listen) == split_listen(screen.listen)
        parts = [("api+screen", api, [self.api.routes, self.screen.routes])] if same else [
            ("api", api, [self.api.routes]), ("screen", screen, [self.screen.routes])]
        for name, listener, routes in parts:
            app = web.Application(client_max_size=MAX_BODY)
            for add in routes:
                add(app)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_S)
            await runner.setup()
            self._runners.append(runner)
            host, port = split_listen(listener.listen)
            context = tls_context(listener, self.config, name)
            try:
                await web.TCPSite(runner, host, port, ssl_context=context).start()
            except OSError as exc:
                raise GatewayError(f"cannot listen on {listener.listen} ({name}): "
                                   f"{exc.strerror or exc}") from exc
            scheme = "https" if context else "http"
            url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
            for part in name.split("+"):
                self.urls[part] = url
            log.info("event=receiver_listening part=%s url=%s", name, url)

    def _dc09_listener(self) -> Dc09Listener | None:
        """The DC-09 listener of ``[dc09]`` (panels and gateways over TCP), or None.
        pysiaalarm (the ``receiver`` extra) is imported only when it is configured."""
        dc09 = self.config.dc09
        if dc09 is None:
            return None
        try:
            from receiver.dc09 import Dc09Listener, PanelAccount
            from receiver.dc09_intake import PanelIntake
        except ImportError as exc:
            raise ConfigError([("dc09", f"needs pysiaalarm ({exc.name} is missing): "
                                        "pip install 'ward-alarm-gateway[receiver]'")]) from exc
        accounts = [PanelAccount(account=a.account.upper(), site=a.site,
                                 key=self.config.dc09_key(a.key_file)) for a in dc09.accounts]
        handler = PanelIntake(self.intake, self.store, self.clock,
                              {a.account: a.site for a in accounts})
        host, port = split_listen(dc09.listen)
        return Dc09Listener(accounts, handler, host=host, port=port,
                            timeband_s=(dc09.max_behind_s, dc09.max_ahead_s))

    async def _listen_dc09(self) -> None:
        if self.dc09 is None:
            return
        try:
            await self.dc09.start()
        except OSError as exc:
            raise GatewayError(f"cannot listen on {self.dc09.host}:{self.dc09.port} (dc09): "
                               f"{exc.strerror or exc}") from exc
        self.urls["dc09"] = f"tcp://{self.dc09.host}:{self.dc09.port}"
        log.info("event=receiver_listening part=dc09 url=%s", self.urls["dc09"])

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            self.desk.forget_old()

    async def _close(self) -> None:
        self.feed.close()
        if self.dc09 is not None:
            await self.dc09.stop()
        for runner in self._runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
        await self.store.stop()
        self.store.close()

    def health(self) -> dict[str, Any]:
        return {"version": gateway.__version__,
                "uptime_s": round(time.monotonic() - self._started),
                "alarms_open": len(self.desk.open_records()), "links": self.links.health(),
                "intake": self.intake.health(), "polls_waiting": self.acks.waiting,
                "screens": self.feed.clients,
                "dc09": self.dc09.health() if self.dc09 is not None else None}


def tls_context(listener: Listener, config: ReceiverConfig, name: str) -> ssl.SSLContext | None:
    """A server TLS context (TLS 1.2+) from the listener's cert and key, or None."""
    if not (listener.tls_cert and listener.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.resolve(listener.tls_cert),
                                config.resolve(listener.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([(f"{name.split('+')[0]}.tls_cert",
                            f"cannot load the certificate and key: {exc}")]) from exc
    return context
