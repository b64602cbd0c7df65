"""Opening a serial port the way both the node bus and the modem need it, and the one loop
that keeps it open: open, serve until it fails, wait (capped backoff), open again."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import serial

from gateway.core.backoff import Backoff

PortOpener = Callable[[str, int], Any]
"""``(port, baudrate)`` → an opened port (blocking; run in a thread)."""
Sleep = Callable[[float], Awaitable[Any]]


def open_serial(port: str, baudrate: int) -> Any:
    """Open ``port`` non-blocking; ``serial_for_url`` so ptys and ``/dev/serial/by-id``
    symlinks work alike."""
    return serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=0)


async def keep_open(
    port: str,
    baudrate: int,
    *,
    serve: Callable[[Any], Awaitable[bool]],
    on_open_failed: Callable[[str], Awaitable[None] | None],
    backoff: Backoff,
    open_port: PortOpener = open_serial,
    sleep: Sleep = asyncio.sleep,
) -> NoReturn:
    """Serve ``port`` until cancelled, reopening it whenever it fails or cannot be opened.

    ``serve(opened)`` owns the opened port until it fails, and returns True when the
    session went well enough to count as a success (the next wait is ``backoff.first_s``
    again); ``on_open_failed(reason)`` reports a port that cannot be opened (unplugged,
    busy, no permission). A cable pulled for an hour is retried every ``backoff.cap_s``.
    """
    delays = backoff.counter()
    while True:
        try:
            opened = await asyncio.to_thread(open_port, port, baudrate)
        except (serial.SerialException, OSError, ValueError) as exc:
            reported = on_open_failed(f"cannot open {port}: {exc}")
            if inspect.isawaitable(reported):
                await reported
        else:
            if await serve(opened):
                delays.reset()
        await sleep(delays.next())
