"""One gateway per storage folder: an exclusive lock held for the whole run.

Two gateways on one folder would both write one journal and fight over the control socket.
The lock is ``flock`` on ``gateway.lock`` (released by the kernel when the process dies, so a
crash never leaves a stale lock), and the file holds the PID of its holder so the one
refused can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from gateway.core.errors import StartRefused

LOCK_FILE = "gateway.lock"


class StorageLock:
    """``acquire`` before touching the storage folder, ``release`` at the very end."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StartRefused` naming the PID that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StartRefused(
                f"storage folder {self.path.parent} is in use by another gateway "
                f"(PID {holder}); stop it first") from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
