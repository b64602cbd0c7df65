"""The simulator's own MQTT broker: amqtt in a thread, on a free port of 127.0.0.1.

``alarm-gateway simulate`` and ``demo`` need a broker, and a technician trying the gateway
on a laptop (or a Pi not yet on the hospital LAN) has none; a simulation must not publish
invented alarms on the hospital's real broker either (the security desk would see them).
So a simulation brings this one unless ``--mqtt-url`` names another. Anonymous, loopback
only, gone when the simulation ends.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

START_TIMEOUT_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def broker_config(port: int) -> dict[str, Any]:
    """amqtt's configuration: one TCP listener on 127.0.0.1, anonymous, no $SYS topics."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class EmbeddedBroker:
    """An amqtt broker on its own event loop thread; :attr:`url` once :meth:`start` returns."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> EmbeddedBroker:
        """Start and wait until the port accepts connections; ``ConnectionError`` if not."""
        try:
            from amqtt.broker import Broker
        except ImportError as exc:
            raise ConnectionError("no MQTT broker: give --mqtt-url, or install the simulator "
                                  "extra (pip install 'ward-alarm-gateway[sim]')") from exc
        self._loop = asyncio.new_event_loop()

        async def run() -> None:
            self._broker = Broker(broker_config(self.port), loop=self._loop)
            await self._broker.start()

        def main() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(run())
            except BaseException as exc:  # reported by start(), in the caller's thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise ConnectionError(f"the embedded MQTT broker did not start on {self.url}: "
                                  f"{self._error or 'timed out'}")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._broker is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            try:
                future.result(5)
            except Exception:  # shutting down anyway
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._broker = None
