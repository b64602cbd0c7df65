"""Opening a serial port the way both the node bus and the modem need it."""

from __future__ import annotations

from typing import Any

import serial


def open_serial(port: str, baudrate: int) -> Any:
    """Open ``port`` non-blocking; ``serial_for_url`` so ptys and ``/dev/serial/by-id``
    symlinks work alike."""
    return serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=0)
