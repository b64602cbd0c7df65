"""The journal's cursors, pruning and ``seq``: a consumer resumes where it stopped after a
restart, nothing is pruned before every consumer has it, and ``seq`` only ever grows."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path

from gateway.journal.store import Batch, Journal, Subscription

OLD, NEW = 1_000.0, 2_000.0  # unix s of events written "long ago" and "now"


def body(ts: float = NEW) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "ts": "2026-11-24T00:00:00.000Z", "_ts": ts, "site": "s",
            "type": "press", "device": "b1", "value": 0, "drill": False, "alarm_id": None}


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[Journal]:
    journal = Journal(path)
    journal.open()
    await journal.start()
    try:
        yield journal
    finally:
        await journal.stop()
        journal.close()


def stored_seqs(path: Path) -> list[int]:
    """The seqs in the journal file itself (the journal serves recent events from memory)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return [int(r[0]) for r in conn.execute("SELECT seq FROM events ORDER BY seq")]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_consumer_resumes_after_its_cursor_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"

    async def scenario() -> None:
        async with opened(path) as journal:
            first = await journal.commit(Batch(events=[body(), body(), body()]))
            sub = Subscription(journal, "mqtt", flush_s=60)
            sub.advance(first.events[1].seq)
            sub.close()  # closing writes the cursor at once, whatever flush_s says
        async with opened(path) as journal:
            sub = Subscription(journal, "mqtt")
            assert sub.position == first.events[1].seq
            batch = await asyncio.wait_for(sub.next_batch(), 5)
            assert [e.seq for e in batch] == [first.events[2].seq]
            assert journal.backlog("mqtt")[0] == 1
            sub.close()

    run(scenario)


def test_next_batch_waits_for_the_next_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "j.sqlite3") as journal:
            sub = Subscription(journal, "mqtt")
            waiting = asyncio.create_task(sub.next_batch())
            await asyncio.sleep(0)
            assert not waiting.done()  # nothing committed yet
            done = await journal.commit(Batch(events=[body()]))
            batch = await asyncio.wait_for(waiting, 5)
            assert [e.id for e in batch] == [done.events[0].id]
            sub.close()

    run(scenario)


def test_nothing_is_pruned_before_every_consumer_has_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "j.sqlite3") as journal:
            done = await journal.commit(Batch(events=[body(OLD) for _ in range(5)],
                                              cursors={"mqtt": 4, "escalation": 2}))
            seqs = [e.seq for e in done.events]
            # a consumer with no cursor yet has nothing: no event may go
            assert journal.prune(older_than=NEW, consumers=["mqtt", "escalation", "new"]) == 0
            # the slowest consumer (escalation, at 2) decides
            assert journal.prune(older_than=NEW, consumers=["mqtt", "escalation"]) == 2
            assert stored_seqs(journal.path) == seqs[2:]

    run(scenario)


def test_recent_events_stay_even_when_delivered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "j.sqlite3") as journal:
            done = await journal.commit(Batch(events=[body(OLD), body(NEW), body(NEW)],
                                              cursors={"mqtt": 3}))
            assert journal.prune(older_than=1_500.0, consumers=["mqtt"]) == 1
            assert stored_seqs(journal.path) == [e.seq for e in done.events[1:]]

    run(scenario)


def test_seq_only_grows_across_batches_pruning_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    seen: list[int] = []

    async def scenario() -> None:
        for _ in range(3):
            async with opened(path) as journal:
                for size in (1, 3):
                    done = await journal.commit(Batch(events=[body(OLD)] * size,
                                                      cursors={"mqtt": journal.last_seq + size}))
                    seen.extend(e.seq for e in done.events)
                journal.prune(older_than=NEW, consumers=["mqtt"])  # all but the newest
                assert journal.last_seq == seen[-1]

    run(scenario)
    assert seen == list(range(1, len(seen) + 1))
