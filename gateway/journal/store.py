"""The durable journal and outbox: SQLite in WAL mode with ``synchronous=FULL``.

Everything the gateway promises rests here (SPEC §1): an event exists once its transaction
is committed, and only then is it ACKed, shown on an LED or published. One writer thread owns
the write connection and commits whatever is queued as one transaction (group commit), so a
burst of presses costs one fsync, not one each. Consumers (MQTT, escalation) read in journal
order through :class:`Subscription` and keep a durable cursor, so after a crash delivery
resumes where the broker last confirmed it (at least once; a duplicate keeps its ``id``).

Retained documents (device state, alarms, health) live in the ``retained`` table with a
version number; the MQTT adapter republishes whatever changed since its own version cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.errors import JournalError
from gateway.core.events import Event
from gateway.journal.integrity import is_corruption

log = logging.getLogger(__name__)

#: Small rows keyed by text are WITHOUT ROWID (one b-tree, not a table plus its key's index):
#: every commit rewrites each page it touches, so fewer trees is fewer bytes per event. Not
#: ``retained``: a WITHOUT ROWID row keeps at most ~230 bytes on its 1 KiB page and spills the
#: rest to an overflow page, and an alarm document is larger, so each rewrite would cost a
#: new overflow page, the freed one and the file header; a rowid table keeps up to ~990
#: bytes in place, and an upsert rewrites the row where it is without touching the topic
#: index (journals made before keep their WITHOUT ROWID table, which works the same).
#: ``events.seq`` is assigned by the writer and never reused because pruning always keeps the
#: newest event (no AUTOINCREMENT: its counter page would be one more page per commit);
#: ``id`` is a random UUID nobody looks events up by, so it has no index (an index on random
#: keys touches a random page per insert). ``CREATE ... IF NOT EXISTS`` leaves an older
#: journal's tables as they are.
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    device TEXT,
    alarm_id TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS retained (
    topic TEXT PRIMARY KEY,
    payload TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS retained_version ON retained(version);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
"""

PAGE_SIZE = 1024
#: staged cursor moves ride along with a transaction only once they have waited this long
#: (s): a stream of events pays the cursors' page about once a second instead of once a
#: commit. What a crash replays is still bounded by the subscriptions' own flush (flush_s).
CURSOR_RIDE_AFTER_S = 1.0
#: recent committed events kept in memory so consumers rarely read the disk; a consumer
#: further behind (a long broker outage) reads pages from the journal instead. Small, so the
#: ring is a few MiB at most on a Pi that runs for years.
RING_SIZE = 2_000


@dataclass
class Batch:
    """What one producer wants committed atomically. ``events`` are Event dicts without
    ``seq`` (the journal assigns it); ``sql`` are extra statements for other tables."""

    events: list[dict[str, Any]] = field(default_factory=list)
    retained: dict[str, Any] = field(default_factory=dict)
    kv: dict[str, Any] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    sql: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    #: write the staged cursor moves with this batch, however recent (see flush_cursors)
    flush_cursors: bool = False


@dataclass
class Committed:
    """What a batch became: the events with their ``seq``."""

    events: list[Event]


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the durability settings the promise needs."""
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # a new journal gets small pages: every commit rewrites each page it touches in
            # the WAL (and again at a checkpoint), so the page size is the SD card's cost per
            # event (docs/benchmarks.md). Ignored for an existing file.
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: {exc}") from exc
    except OSError as exc:
        raise JournalError(f"journal {path}: {exc.strerror}") from exc


class Journal:
    """The journal file plus its writer thread. ``open()`` before use, ``close()`` after.
    ``cursor_ride_after_s``: see :data:`CURSOR_RIDE_AFTER_S`."""

    def __init__(self, path: Path, *, cursor_ride_after_s: float = CURSOR_RIDE_AFTER_S) -> None:
        self.path = path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[tuple[Batch, asyncio.Future[Committed]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ring: deque[Event] = deque(maxlen=RING_SIZE)
        self._last_seq = 0
        self._retained_version = 0
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []
        self.commits = 0
        self.batches = 0
        #: why the journal file is damaged, once a commit found it so (see JournalWatch)
        self.damage: str | None = None
        self._damaged = asyncio.Event()
        # consumers' positions waiting for the next transaction (see Subscription.advance)
        self._staged_cursors: dict[str, int] = {}
        self._staged_since: float | None = None  # monotonic s of the oldest staged move
        self._ride_after_s = cursor_ride_after_s
        self._staged_lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------
    def open(self) -> None:
        self._writer = connect(self.path)
        try:
            self._writer.executescript(SCHEMA)
            self._last_seq = _max_seq(self._writer)
            row = self._writer.execute("SELECT COALESCE(MAX(version), 0) FROM retained").fetchone()
            self._retained_version = int(row[0])
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc
        self._reader = connect(self.path)

    async def start(self) -> None:
        """Start the writer thread; commits resolve futures on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._damaged = asyncio.Event()
        self._thread = threading.Thread(target=self._write_loop, name="journal-writer", daemon=True)
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

    @property
    def last_seq(self) -> int:
        return self._last_seq

    # -- writing ----------------------------------------------------------------------------
    async def commit(self, batch: Batch) -> Committed:
        """Queue ``batch`` for the next group commit and wait until it is durable."""
        assert self._loop is not None, "Journal.start() was not awaited"
        fut: asyncio.Future[Committed] = self._loop.create_future()
        self._queue.put((batch, fut))
        return await fut

    def commit_nowait(self, batch: Batch) -> None:
        """Queue a batch whose result nobody waits for (cursor moves, housekeeping)."""
        assert self._loop is not None
        self._queue.put((batch, self._loop.create_future()))

    def stage_cursor(self, name: str, position: int) -> bool:
        """Keep consumer ``name``'s ``position`` for a later transaction, whoever's it is.

        A cursor move rides along with the first event's commit once it has waited
        ``cursor_ride_after_s`` instead of costing a commit (and an fsync, and SD-card pages)
        of its own. Returns True when nothing was staged before, i.e. when the caller should
        make sure a commit follows (see :meth:`flush_cursors`)."""
        with self._staged_lock:
            fresh = not self._staged_cursors
        self._restage({name: position}, time.monotonic())
        return fresh

    def flush_cursors(self) -> None:
        """Commit staged cursor moves now, unless a transaction already took them."""
        with self._staged_lock:
            if not self._staged_cursors:
                return
        self.commit_nowait(Batch(flush_cursors=True))

    def _take_staged(self, *, now: bool) -> tuple[dict[str, int], float | None]:
        """The staged moves and since when, if ``now`` or once they have waited long enough
        to ride along; else nothing (they wait for a later transaction)."""
        with self._staged_lock:
            since = self._staged_since
            if since is None or not (now or time.monotonic() - since >= self._ride_after_s):
                return {}, None
            staged, self._staged_cursors, self._staged_since = self._staged_cursors, {}, None
        return staged, since

    def _restage(self, staged: dict[str, int], since: float | None) -> None:
        with self._staged_lock:
            if staged and since is not None:
                self._staged_since = min(since, self._staged_since or since)
            for name, position in staged.items():
                self._staged_cursors[name] = max(position, self._staged_cursors.get(name, position))

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            work: list[tuple[Batch, asyncio.Future[Committed]]] = []
            while item is not None:
                work.append(item)
                if len(work) >= 2000:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            if work:
                self._write_batches(work)

    def _write_batches(self, work: list[tuple[Batch, asyncio.Future[Committed]]]) -> None:
        """Commit the group as one transaction. If it fails, commit each batch alone, so one
        bad batch (an unserialisable detail, a constraint) fails only its own producer and
        the writer thread never dies: a dead writer would hang every later commit."""
        assert self._loop is not None
        try:
            results = self._transaction([batch for batch, _ in work])
        except Exception as exc:
            if len(work) > 1:
                for item in work:
                    self._write_batches([item])
                return
            log.error("event=journal_commit_failed error=%r", str(exc))
            error = JournalError(f"journal commit failed: {exc}")
            if is_corruption(exc):
                self._loop.call_soon_threadsafe(self.mark_damaged, str(exc))
            self._loop.call_soon_threadsafe(_fail, work[0][1], error)
            return
        self.commits += 1
        self.batches += len(work)
        self._loop.call_soon_threadsafe(self._publish_results, work, results)

    def _transaction(self, batches: list[Batch]) -> list[Committed]:
        assert self._writer is not None
        conn = self._writer
        staged, since = self._take_staged(now=any(b.flush_cursors for b in batches))
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [self._apply(conn, batch) for batch in batches]
            if staged:
                self._apply(conn, Batch(cursors=staged))
            conn.execute("COMMIT")
            return results
        except Exception:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._restage(staged, since)
            self._reload_counters()
            raise

    def _apply(self, conn: sqlite3.Connection, batch: Batch) -> Committed:
        events: list[Event] = []
        for body in batch.events:
            self._last_seq += 1
            full = {**body, "seq": self._last_seq}
            event = _event_from_body(full)
            # encoded once: MQTT publishes event.to_json() as made here, and the body stored
            # is that text plus the private ``_ts`` (unix seconds) appended
            published = event.to_json()
            text = f'{published[:-1]},"_ts":{json.dumps(full["_ts"])}}}'
            conn.execute(
                "INSERT INTO events(seq, id, ts, type, device, alarm_id, body) VALUES (?,?,?,?,?,?,?)",
                (self._last_seq, full["id"], full["_ts"], full["type"], full.get("device"),
                 full.get("alarm_id"), text),
            )
            events.append(event)
        for topic, payload in batch.retained.items():
            self._retained_version += 1
            value = None if payload is None else _dump(payload)
            conn.execute(
                "INSERT INTO retained(topic, payload, version) VALUES (?,?,?) ON CONFLICT(topic) "
                "DO UPDATE SET payload=excluded.payload, version=excluded.version",
                (topic, value, self._retained_version),
            )
        for key, value in batch.kv.items():
            if value is None:
                conn.execute("DELETE FROM kv WHERE key=?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?,?)",
                             (key, _dump(value, compact=True)))
        for name, position in batch.cursors.items():
            conn.execute(
                "INSERT INTO cursors(name, position) VALUES (?,?) ON CONFLICT(name) "
                "DO UPDATE SET position=MAX(position, excluded.position)",
                (name, position),
            )
        for statement, params in batch.sql:
            conn.execute(statement, params)
        return Committed(events)

    def _reload_counters(self) -> None:
        assert self._writer is not None
        try:
            self._last_seq = _max_seq(self._writer)
            self._retained_version = int(
                self._writer.execute("SELECT COALESCE(MAX(version),0) FROM retained").fetchone()[0]
            )
        except sqlite3.Error:
            pass

    def _publish_results(
        self, work: list[tuple[Batch, asyncio.Future[Committed]]], results: list[Committed]
    ) -> None:
        for (_, fut), result in zip(work, results, strict=True):
            self._ring.extend(result.events)
            if not fut.done():
                fut.set_result(result)
        self._changed.set()
        for listener in list(self._listeners):
            listener()

    # -- reading ----------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[], None]) -> None:
        """Called on the loop after every group commit (consumers wake up on it)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        """Committed events with ``seq`` greater than ``seq``, oldest first."""
        ring = self._ring
        if ring and ring[0].seq <= seq + 1:
            start = seq + 1 - ring[0].seq
            if start >= len(ring):
                return []
            return [ring[i] for i in range(start, min(len(ring), start + limit))]
        return self._read_events(seq, limit)

    def _read_events(self, seq: int, limit: int) -> list[Event]:
        assert self._reader is not None
        rows = self._reader.execute(
            "SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [_event_from_body(json.loads(r[0])) for r in rows]

    def retained_after(self, version: int, limit: int = 500) -> list[tuple[int, str, str | None]]:
        """``(version, topic, payload)`` of retained documents changed after ``version``."""
        assert self._reader is not None
        return self._reader.execute(
            "SELECT version, topic, payload FROM retained WHERE version > ? ORDER BY version LIMIT ?",
            (version, limit),
        ).fetchall()

    def retained_all(self, prefix: str = "") -> dict[str, Any]:
        assert self._reader is not None
        rows = self._reader.execute(
            "SELECT topic, payload FROM retained WHERE topic LIKE ? AND payload IS NOT NULL",
            (prefix.replace("%", r"\%") + "%",),
        ).fetchall()
        return {t: json.loads(p) for t, p in rows}

    def kv_all(self, prefix: str) -> dict[str, Any]:
        assert self._reader is not None
        rows = self._reader.execute(
            "SELECT key, value FROM kv WHERE key LIKE ?", (prefix.replace("%", r"\%") + "%",)
        ).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def cursor(self, name: str) -> int:
        assert self._reader is not None
        row = self._reader.execute("SELECT position FROM cursors WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def backlog(self, name: str, position: int | None = None) -> tuple[int, float | None]:
        """(events after the consumer's position, ts of the oldest of them or None). The
        position is the consumer's latest, staged or written: a cursor waiting to ride
        along with a later commit is delivery done, not backlog."""
        assert self._reader is not None
        if position is None:
            with self._staged_lock:
                staged = self._staged_cursors.get(name, 0)
            pos = max(staged, self.cursor(name))
        else:
            pos = position
        row = self._reader.execute(
            "SELECT COUNT(*), MIN(ts) FROM events WHERE seq > ?", (pos,)
        ).fetchone()
        return int(row[0]), (float(row[1]) if row[1] is not None else None)

    def prune(self, older_than: float, consumers: list[str]) -> int:
        """Delete events delivered to every consumer and older than ``older_than`` (unix s).
        Blocking: call it off the loop. Uses its own connection; returns rows deleted."""
        conn = connect(self.path)
        try:
            rows = conn.execute(
                f"SELECT position FROM cursors WHERE name IN ({','.join('?' * len(consumers))})",
                consumers,
            ).fetchall()
            floor = min((int(r[0]) for r in rows), default=0) if len(rows) == len(consumers) else 0
            # the newest event always stays: it carries the seq high-water mark
            cur = conn.execute(
                "DELETE FROM events WHERE seq <= ? AND ts < ? "
                "AND seq < (SELECT MAX(seq) FROM events)", (floor, older_than))
            return cur.rowcount
        except sqlite3.Error as exc:
            raise JournalError(f"journal prune failed: {exc}") from exc
        finally:
            conn.close()

    @property
    def changed(self) -> asyncio.Event:
        return self._changed

    def mark_damaged(self, why: str) -> None:
        """Record that the journal file is damaged: :class:`JournalWatch` stops the gateway."""
        if self.damage is None:
            self.damage = why
            self._damaged.set()

    async def wait_damaged(self) -> str:
        await self._damaged.wait()
        return self.damage or "damaged"


class Subscription:
    """One consumer's ordered view of the journal, with a durable cursor.

    ``position`` is the last seq the consumer finished with. :meth:`advance` stages it with
    the journal, which writes it in a later event's transaction (the first once it has
    waited :data:`CURSOR_RIDE_AFTER_S`); if none has taken it within ``flush_s`` seconds, a
    commit of its own writes it. A crash therefore replays at most the last ``flush_s``
    seconds: at least once, never lost (SPEC §1; consumers tell replays by the event ``id``,
    the dispatcher by a delivery's status).
    """

    def __init__(self, journal: Journal, name: str, flush_s: float = 2.0) -> None:
        self.journal = journal
        self.name = name
        self.position = journal.cursor(name)
        self._wake = asyncio.Event()
        self._flush_s = flush_s
        self._flush_handle: asyncio.TimerHandle | None = None
        journal.add_listener(self._wake.set)

    async def next_batch(self, limit: int = 500) -> list[Event]:
        """The next committed events after ``position`` (waits until there are some)."""
        while True:
            self._wake.clear()
            events = self.journal.events_after(self.position, limit)
            if events:
                return events
            await self._wake.wait()

    def advance(self, seq: int) -> None:
        if seq <= self.position:
            return
        self.position = seq
        self.journal.stage_cursor(self.name, seq)
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self._flush_s, self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        self.journal.flush_cursors()

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush()
        self.journal.remove_listener(self._wake.set)


def _dump(value: Any, *, compact: bool = False) -> str:
    """JSON text; ``compact`` (private records nobody reads by eye) drops the spaces:
    bytes a row carries are bytes of the page it sits on."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":") if compact else None)


def _fail(fut: asyncio.Future[Committed], error: Exception) -> None:
    if not fut.done():
        fut.set_exception(error)


def _event_from_body(body: dict[str, Any]) -> Event:
    clean = {k: v for k, v in body.items() if not k.startswith("_")}
    return Event.from_dict(clean)


def _max_seq(conn: sqlite3.Connection) -> int:
    """The highest seq ever used, even when pruning deleted it (seq is never reused)."""
    try:  # journals made before the newest event was always kept counted in sqlite_sequence
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
    except sqlite3.OperationalError:  # no AUTOINCREMENT table in this journal
        row = None
    used = int(row[0]) if row else 0
    top = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    return max(used, top)
