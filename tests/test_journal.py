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

