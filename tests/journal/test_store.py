"""The journal survives a batch it cannot write: only that producer fails."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from waiting import apoll_until

from gateway.core.errors import JournalError
from gateway.journal.store import Batch, Journal


def body(**extra: object) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "ts": "2026-11-24T00:00:00.000Z", "_ts": 1.0, "site": "s",
            "type": "press", "device": "b1", "value": 0, "drill": False, "alarm_id": None, **extra}


def test_bad_batch_fails_alone_and_the_writer_keeps_going(tmp_path: Path) -> None:
    async def main() -> None:
        journal = Journal(tmp_path / "j.sqlite3")
        journal.open()
        await journal.start()
        try:
            good = journal.commit(Batch(events=[body()]))
            bad = journal.commit(Batch(events=[body(detail={"x": object()})]))
            results = await asyncio.gather(good, bad, return_exceptions=True)
            assert len(results[0].events) == 1  # type: ignore[union-attr]
            assert isinstance(results[1], JournalError)
            after = await asyncio.wait_for(journal.commit(Batch(events=[body()])), 5)
            assert after.events[0].seq == results[0].events[0].seq + 1  # type: ignore[union-attr]
            assert [e.seq for e in journal.events_after(0)] == [1, 2]
        finally:
            await journal.stop()
            journal.close()

    asyncio.run(main())



def test_cursor_moves_ride_along_with_the_next_commit(tmp_path: Path) -> None:
    """A consumer's cursor costs no commit of its own while events keep coming, and is
    written alone within flush_s when none come; it never goes backwards."""
    from gateway.journal.store import Subscription

    async def main() -> None:
        journal = Journal(tmp_path / "j.sqlite3", cursor_ride_after_s=0)
        journal.open()
        await journal.start()
        try:
            first = await journal.commit(Batch(events=[body()]))
            sub = Subscription(journal, "mqtt", flush_s=0.2)
            sub.advance(first.events[0].seq)
            commits = journal.commits
            await journal.commit(Batch(events=[body()]))
            assert journal.commits == commits + 1  # the event's commit took the cursor along
            assert journal.cursor("mqtt") == first.events[0].seq
            sub.advance(first.events[0].seq + 1)
            sub.advance(first.events[0].seq)  # an older position is ignored
            await apoll_until(lambda: journal.cursor("mqtt") == first.events[0].seq + 1,
                              5, what="the cursor written alone")
            sub.close()
        finally:
            await journal.stop()
            journal.close()

    asyncio.run(main())


def test_a_fresh_cursor_move_waits_for_a_later_commit_or_its_flush(tmp_path: Path) -> None:
    """Events in quick succession do not each carry the cursor's page: a move younger than
    cursor_ride_after_s stays staged; the subscription's flush still writes it in flush_s."""
    from gateway.journal.store import Subscription

    async def main() -> None:
        journal = Journal(tmp_path / "j.sqlite3", cursor_ride_after_s=60)
        journal.open()
        await journal.start()
        try:
            first = await journal.commit(Batch(events=[body()]))
            sub = Subscription(journal, "mqtt", flush_s=0.2)
            sub.advance(first.events[0].seq)
            await journal.commit(Batch(events=[body()]))
            assert journal.cursor("mqtt") == 0  # too fresh to ride along
            await apoll_until(lambda: journal.cursor("mqtt") == first.events[0].seq, 5,
                              what="the cursor written by the flush")
            sub.close()
        finally:
            await journal.stop()
            journal.close()

    asyncio.run(main())


def test_pruning_keeps_the_newest_event_so_seq_is_never_reused(tmp_path: Path) -> None:
    async def main() -> None:
        path = tmp_path / "j.sqlite3"
        journal = Journal(path)
        journal.open()
        await journal.start()
        try:
            done = await journal.commit(Batch(events=[body(), body()], cursors={"mqtt": 2}))
            assert journal.prune(older_than=1e12, consumers=["mqtt"]) == 1
        finally:
            await journal.stop()
            journal.close()
        again = Journal(path)
        again.open()
        await again.start()
        try:
            after = await again.commit(Batch(events=[body()]))
            assert after.events[0].seq == done.events[-1].seq + 1
        finally:
            await again.stop()
            again.close()

    asyncio.run(main())


def test_a_journal_the_gateway_creates_has_small_pages(tmp_path: Path) -> None:
    """The first connection chooses the page size for good: the start-up guard, which
    creates the file, gives it the journal's 1 KiB pages (what each commit pays per page)."""
    import sqlite3
    from contextlib import closing

    from gateway.journal import guard
    from gateway.journal.store import PAGE_SIZE

    path = tmp_path / "var" / "journal.sqlite3"
    guard.prepare(path, new_journal=False)
    journal = Journal(path)
    journal.open()
    journal.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 1024


def test_a_journal_made_with_the_older_tables_keeps_working(tmp_path: Path) -> None:
    """A journal whose ``retained`` table is WITHOUT ROWID and whose events are indexed as
    before is used as it is: documents replace each other by topic, versions only grow."""
    import sqlite3
    from contextlib import closing

    path = tmp_path / "j.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts REAL NOT NULL, "
            "type TEXT NOT NULL, device TEXT, alarm_id TEXT, body TEXT NOT NULL);"
            "CREATE TABLE retained (topic TEXT PRIMARY KEY, payload TEXT, "
            "version INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE INDEX retained_version ON retained(version);"
            "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
            "INSERT INTO retained VALUES ('alarm/a1', '{\"state\": \"raised\"}', 7);")

    async def main() -> None:
        journal = Journal(path)
        journal.open()
        await journal.start()
        try:
            await journal.commit(Batch(events=[body()], retained={"alarm/a1": {"state": "resolved"}},
                                       kv={"alarm:a1": {"raised_at": 1.5}}))
            assert journal.retained_all("alarm/") == {"alarm/a1": {"state": "resolved"}}
            assert [v for v, _, _ in journal.retained_after(0)] == [8]
            assert journal.kv_all("alarm:") == {"alarm:a1": {"raised_at": 1.5}}
        finally:
            await journal.stop()
            journal.close()

    asyncio.run(main())
