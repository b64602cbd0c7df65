"""A host stand-in for MicroPython's ``machine`` module: just what the button node uses.

Inputs are driven from the host side (:meth:`Pin.drive`, :meth:`ADC.set_mv`); the UART
talks to a *link* object (``write(bytes) -> int`` and ``read(n) -> bytes``), see
:mod:`firmware_stubs.host`. Behaviour follows MicroPython: ``UART.read`` returns None when
nothing is waiting, a pulled-up input reads 1 until driven low.
"""

from __future__ import annotations

from typing import Protocol


class Link(Protocol):
    """Where a host UART's bytes go: a pty fd, or the simulator's shared bus."""

    def write(self, data: bytes) -> int: ...

    def read(self, nbytes: int) -> bytes: ...


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(
        self, id: int | str, mode: int = IN, pull: int | None = None, value: int | None = None
    ) -> None:
        self.id = id
        self.mode = mode
        self.pull = pull
        self._level = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self._level = 1 if value else 0

    def value(self, level: int | None = None) -> int:
        if level is not None:
            self._level = 1 if level else 0
        return self._level

    def on(self) -> None:
        self._level = 1

    def off(self) -> None:
        self._level = 0

    def drive(self, level: int) -> None:
        """Host side: set the electrical level an input reads (0 = pulled to ground)."""
        self._level = 1 if level else 0


class ADC:
    """12..16-bit ADC read as ``read_u16`` (0..65535 for 0..``vref_mv`` at the pin)."""

    def __init__(self, pin: int | Pin, vref_mv: int = 3300, divider: int = 2) -> None:
        self.pin = pin
        self._vref_mv = vref_mv
        self._divider = divider
        self._raw = 65535

    def read_u16(self) -> int:
        return self._raw

    def set_mv(self, battery_mv: int) -> None:
        """Host side: the battery voltage before the node's resistor divider, in mV."""
        raw = round(battery_mv * 65535 / (self._vref_mv * self._divider))
        self._raw = max(0, min(65535, raw))


class UART:
    def __init__(self, id: int, baudrate: int = 9600, *, link: Link | None = None, **_: object):
        self.id = id
        self.baudrate = baudrate
        self._link = link

    def write(self, buf: bytes) -> int:
        if self._link is None:
            return 0
        return self._link.write(bytes(buf))

    def read(self, nbytes: int = 256) -> bytes | None:
        if self._link is None:
            return None
        data = self._link.read(nbytes)
        return data or None
