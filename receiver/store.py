"""The receiver's journal: SQLite in WAL mode with ``synchronous=FULL``, one writer thread.

An alarm is answered ``200`` only once its transaction is committed (SPEC §6). One writer
thread commits whatever is queued as one transaction (group commit), so fifty hospitals
reporting at once cost one fsync per burst, not fifty. Numbers (alarm refs, ack cursors,
journal seqs) are handed out on the event loop when a batch is queued, so the commit order is
the number order and a long-poll never skips an ack that commits late.

Tables: ``events`` (the journal of everything: alarms in, refusals, officer steps, link
changes, logins), ``alarms`` (one document per hospital alarm), ``deliveries`` (idempotency
keys), ``acks`` (what goes back to each gateway), ``sites`` (link state), ``sessions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.errors import JournalError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, type TEXT NOT NULL, site TEXT,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS alarms (
    ref INTEGER PRIMARY KEY, site TEXT NOT NULL, alarm_id TEXT NOT NULL,
    state TEXT NOT NULL, received REAL NOT NULL, updated REAL NOT NULL, doc TEXT NOT NULL,
    UNIQUE(site, alarm_id));
CREATE INDEX IF NOT EXISTS alarms_state ON alarms(state, updated);
CREATE TABLE IF NOT EXISTS deliveries (
    site TEXT NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL, ref INTEGER,
    ts REAL NOT NULL, PRIMARY KEY(site, source, key));
CREATE TABLE IF NOT EXISTS acks (
    cursor INTEGER PRIMARY KEY, site TEXT NOT NULL, ts REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS acks_site ON acks(site, cursor);
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY, last_seen REAL, link TEXT NOT NULL, noted_by TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL);
"""

Statement = tuple[str, tuple[Any, ...]]


@dataclass
class Batch:
    """Statements one producer needs committed together."""

    statements: list[Statement] = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> Batch:
        self.statements.append((sql, params))
        return self


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the durability settings the promise needs."""
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn
    except sqlite3.Error as exc:
        raise JournalError(f"receiver journal {path}: {exc}") from exc
    except OSError as exc:
        raise JournalError(f"receiver journal {path}: {exc.strerror}") from exc


class Store:
    """The journal file, its writer thread and a reader connection for the loop.

    ``open()`` then ``await start()``; ``await stop()`` then ``close()``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[tuple[Batch, asyncio.Future[None]] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: dict[str, int] = {}
        self.commits = 0
        self.batches = 0

    def open(self) -> None:
        self._writer = connect(self.path)
        try:
            self._writer.executescript(SCHEMA)
            for table, column in (("events", "seq"), ("alarms", "ref"), ("acks", "cursor")):
                top = self._writer.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
                self._next[table] = int(top.fetchone()[0]) + 1
        except sqlite3.Error as exc:
            raise JournalError(f"receiver journal {self.path}: {exc}") from exc
        self._reader = connect(self.path)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write_loop, name="receiver-writer",
                                        daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None

    # -- numbers --------------------------------------------------------------------------
    def allocate(self, table: str) -> int:
        """The next ``events.seq`` / ``alarms.ref`` / ``acks.cursor``; call on the loop and
        queue the batch using it before the next await (the queue keeps number order)."""
        n = self._next[table]
        self._next[table] = n + 1
        return n

    def peek(self, table: str) -> int:
        """The last number handed out (0 when none)."""
        return self._next[table] - 1

    # -- writing --------------------------------------------------------------------------
    def event(self, batch: Batch, ts: float, type_: str, site: str | None,
              detail: dict[str, Any]) -> int:
        """Add one journal event to ``batch``; returns its seq."""
        seq = self.allocate("events")
        batch.add("INSERT INTO events(seq, ts, type, site, detail) VALUES (?,?,?,?,?)",
                  seq, ts, type_, site, dump(detail))
        return seq

    def queue(self, batch: Batch) -> asyncio.Future[None]:
        """Queue ``batch`` now (number order); await the future for durability."""
        assert self._loop is not None, "Store.start() was not awaited"
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((batch, fut))
        return fut

    async def commit(self, batch: Batch) -> None:
        await self.queue(batch)

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            work: list[tuple[Batch, asyncio.Future[None]]] = []
            while item is not None:
                work.append(item)
                if len(work) >= 1000:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            if work:
                self._write(work)

    def _write(self, work: list[tuple[Batch, asyncio.Future[None]]]) -> None:
        """One transaction for the group; if it fails, each batch alone, so a bad batch
        fails only its producer and the writer thread never dies."""
        assert self._loop is not None and self._writer is not None
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            for batch, _ in work:
                for sql, params in batch.statements:
                    conn.execute(sql, params)
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if len(work) > 1:
                for item in work:
                    self._write([item])
                return
            log.error("event=receiver_commit_failed error=%r", str(exc))
            error = JournalError(f"receiver journal commit failed: {exc}")
            self._loop.call_soon_threadsafe(_settle, work[0][1], error)
            return
        self.commits += 1
        self.batches += len(work)
        for _, fut in work:
            self._loop.call_soon_threadsafe(_settle, fut, None)

    # -- reading (on the loop; SQLite reads take microseconds) ----------------------------
    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        assert self._reader is not None
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"receiver journal read failed: {exc}") from exc

    def one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        found = self.rows(sql, *params)
        return found[0] if found else None


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _settle(fut: asyncio.Future[None], error: Exception | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)

