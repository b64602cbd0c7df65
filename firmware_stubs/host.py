"""Run the MicroPython button firmware under CPython, unchanged.

:func:`install` registers :mod:`firmware_stubs.machine` as ``machine``;
:func:`load_firmware` then imports ``button_node``. The firmware reads time through the
object passed as its ``clock``: :class:`HostTicks` (real time) or :class:`ManualTicks`
(moves only when told, for tests). The UART's *link* is a pty fd (:class:`FdLink`) or an
in-memory pair of buffers (:class:`MemoryLink`, what the bus simulator uses).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType

from firmware_stubs import machine

TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms wraps here on most ports


def install() -> None:
    """Make ``import machine`` find the host fake (idempotent)."""
    sys.modules.setdefault("machine", machine)


def load_firmware() -> ModuleType:
    """The ``button_node`` firmware module, imported with the host shim in place."""
    install()
    return importlib.import_module("firmware_stubs.button_node")


class HostTicks:
    """MicroPython's ``time.ticks_ms``/``ticks_diff``/``ticks_add``/``sleep_ms`` over a
    clock giving seconds (``time.monotonic`` unless told otherwise)."""

    def __init__(self, seconds: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds

    def ticks_ms(self) -> int:
        return int(self._seconds() * 1000) & (TICKS_PERIOD - 1)

    @staticmethod
    def ticks_add(ticks: int, delta_ms: int) -> int:
        return (ticks + delta_ms) & (TICKS_PERIOD - 1)

    @staticmethod
    def ticks_diff(a: int, b: int) -> int:
        """Signed ``a - b`` in ms, correct across the wrap (as in MicroPython)."""
        half = TICKS_PERIOD // 2
        return ((a - b + half) & (TICKS_PERIOD - 1)) - half

    def sleep_ms(self, ms: int) -> None:
        time.sleep(ms / 1000)


class ManualTicks(HostTicks):
    """Ticks that move only with :meth:`advance` (or the firmware's own ``sleep_ms``)."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms
        super().__init__(lambda: self.now_ms / 1000)

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    def sleep_ms(self, ms: int) -> None:
        self.advance(ms)


class MemoryLink:
    """A UART wire as two byte buffers: what the node sent, what it will receive.

    Thread-safe: the simulator fills ``deliver`` and drains ``take_uplink`` from its thread.
    ``muted`` drops what the node writes (a silent or unpowered radio).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._up = bytearray()
        self._down = bytearray()
        self.muted = False

    def write(self, data: bytes) -> int:
        with self._lock:
            if not self.muted:
                self._up += data
        return len(data)

    def read(self, nbytes: int) -> bytes:
        with self._lock:
            data = bytes(self._down[:nbytes])
            del self._down[:nbytes]
        return data

    def deliver(self, data: bytes) -> None:
        """Bytes arriving at the node's receiver (kept to 4 KiB, like a small ring buffer)."""
        with self._lock:
            self._down += data
            del self._down[:-4096]

    def take_uplink(self) -> bytes:
        with self._lock:
            data = bytes(self._up)
            self._up.clear()
        return data


class FdLink:
    """A UART wire on a file descriptor (e.g. a pty master), non-blocking both ways."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    def read(self, nbytes: int) -> bytes:
        try:
            return os.read(self.fd, nbytes)
        except BlockingIOError:
            return b""
        except OSError as exc:  # EIO: the other end of the pty is closed
            if exc.errno == errno.EIO:
                return b""
            raise


class NodeHardware:
    """The fake parts one node is built from; the host drives them."""

    def __init__(self, link: machine.Link, battery_mv: int = 3000) -> None:
        self.link = link
        self.uart = machine.UART(1, 115200, link=link)
        self.button = machine.Pin(4, machine.Pin.IN, machine.Pin.PULL_UP)
        self.tamper = machine.Pin(5, machine.Pin.IN, machine.Pin.PULL_UP, value=0)
        self.led = machine.Pin(2, machine.Pin.OUT, value=0)
        self.adc = machine.ADC(26)
        self.adc.set_mv(battery_mv)
