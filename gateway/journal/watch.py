"""Watches the running journal: a damaged or vanished journal stops the gateway.

Corruption found while running must never be met with silent ACKs. Three ways to find it:
a commit that fails with SQLite's "malformed"/"not a database" (the store marks the journal
damaged at once), a full :func:`gateway.journal.integrity.check` every
:data:`CHECK_EVERY_S` (and on the ``check_journal`` control command), and a look every
:data:`STAT_EVERY_S` at the journal's path (deleted or replaced while open: the gateway
would be writing to a file nobody can read after the next restart). Any of them ends
:meth:`JournalWatch.run` with :class:`JournalError`: the supervisor journals ``trouble``
(when it still can), publishes ``offline`` and exits 1; the next start refuses the damaged
journal with one line (see :mod:`gateway.journal.guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from gateway.core.errors import JournalError
from gateway.journal import integrity
from gateway.journal.store import Journal

log = logging.getLogger(__name__)

CHECK_EVERY_S = 900.0
STAT_EVERY_S = 30.0


class JournalWatch:
    """Long-lived task of the gateway; ``check_now`` answers the control command."""

    def __init__(self, journal: Journal, *, check_every_s: float = CHECK_EVERY_S,
                 stat_every_s: float = STAT_EVERY_S) -> None:
        self.journal = journal
        self.check_every_s = check_every_s
        self.stat_every_s = stat_every_s
        self.checks = 0
        self._inode: tuple[int, int] | None = None

    async def run(self) -> None:
        self._inode = _inode(self.journal.path)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.check_every_s
        damaged = asyncio.create_task(self.journal.wait_damaged())
        try:
            while True:
                done, _ = await asyncio.wait({damaged}, timeout=self.stat_every_s)
                if done:
                    raise JournalError(f"journal {self.journal.path} is damaged: {damaged.result()}")
                self._check_path()
                if loop.time() >= next_check:
                    await self.check_now()
                    next_check = loop.time() + self.check_every_s
        finally:
            damaged.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await damaged

    async def check_now(self) -> list[str]:
        """Run the full check; a problem marks the journal damaged (the task then stops the
        gateway) and is returned."""
        problems = await asyncio.to_thread(integrity.check, self.journal.path)
        self.checks += 1
        if problems:
            log.error("event=journal_damaged problems=%r", problems)
            self.journal.mark_damaged("; ".join(problems))
        return problems

    def _check_path(self) -> None:
        now = _inode(self.journal.path)
        if now is None:
            self.journal.mark_damaged("the journal file was deleted while the gateway ran")
        elif self._inode is not None and now != self._inode:
            self.journal.mark_damaged("the journal file was replaced while the gateway ran")


def _inode(path: os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
