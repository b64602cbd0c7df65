"""systemd's notify protocol: ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=…``.

Small and soft-failing: without ``NOTIFY_SOCKET`` (not started by systemd, or by a unit that
is not ``Type=notify``) every call does nothing. A failed send is logged once and never
raised: the gateway must not stop because systemd cannot be told something.

The watchdog heartbeat is sent *from the event loop itself*, every half ``WatchdogSec``
(``WATCHDOG_USEC``), so a blocked or wedged loop stops the heartbeats and systemd restarts
the service. A heartbeat from a helper thread would keep a dead gateway alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends datagrams to the socket systemd named in ``NOTIFY_SOCKET`` (path or ``@abstract``)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.sent = 0
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (``KEY=value``) as one datagram; True if it was sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)  # noqa: FBT003 - the socket API's own flag
            target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._sock.sendto("\n".join(lines).encode(), target)
        except OSError as exc:
            if not self._failed:
                log.warning("event=sd_notify_failed socket=%r error=%r", self.address, str(exc))
            self._failed = True
            return False
        self._failed = False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of systemd's ``WatchdogSec`` in seconds, or None when no watchdog is asked for
    (or it is meant for another process, per ``WATCHDOG_PID``)."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


async def heartbeat(notifier: Notifier, interval_s: float,
                    status: Callable[[], str] | None = None) -> None:
    """``WATCHDOG=1`` every ``interval_s`` seconds from this loop, until cancelled; a changed
    ``status()`` line is sent with it."""
    last_status = ""
    while True:
        lines = ["WATCHDOG=1"]
        if status is not None:
            text = status()
            if text != last_status:
                lines.append(f"STATUS={text}")
                last_status = text
        notifier.notify(*lines)
        await asyncio.sleep(interval_s)
