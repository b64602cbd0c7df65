"""The journal survives a batch it cannot write: only that producer fails."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

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
        journal = Journal(tmp_path / "j.sqlite3")
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
            deadline = asyncio.get_running_loop().time() + 5
            while journal.cursor("mqtt") != first.events[0].seq + 1:
                assert asyncio.get_running_loop().time() < deadline, "cursor never written"
                await asyncio.sleep(0.02)
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
