"""How long the journal's start-up check takes, by journal size.

The gateway runs ``PRAGMA quick_check`` on every start and every 15 minutes
(:mod:`gateway.journal.integrity`). This builds journals of realistic events (a press body
each) and times the check, warm (pages in the OS cache, as after a restart) and cold where
the OS lets us drop the file from its cache (``posix_fadvise(DONTNEED)``), beside the full
``integrity_check`` it replaces.

    python -m bench.journal_check [--events 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from gateway.journal import integrity
from gateway.journal.store import SCHEMA


def build(path: Path, events: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    conn.execute("BEGIN")
    for seq in range(1, events + 1):
        body = {"id": str(uuid.uuid4()), "seq": seq, "ts": "2026-11-24T08:00:00.000Z",
                "site": "bv-da-khoa-tinh", "ward": "cap-cuu", "room": "Quầy tiếp đón",
                "device": "er-desk-1", "kind": "panic_button", "type": "press", "value": 0,
                "drill": False, "alarm_id": str(uuid.uuid4()), "detail": {"battery_mv": 2950}}
        conn.execute("INSERT INTO events(seq, id, ts, type, device, alarm_id, body) "
                     "VALUES (?,?,?,?,?,?,?)", (seq, body["id"], 1.7e9 + seq, "press",
                                                "er-desk-1", body["alarm_id"], json.dumps(body)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def drop_cache(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return True
    except (OSError, AttributeError):
        return False


def timed(fn: Callable[[Path], object], path: Path) -> float:
    started = time.perf_counter()
    fn(path)
    return time.perf_counter() - started


def full_check(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print("| events | file MB | quick_check cold s | quick_check warm s | integrity_check s |")
    print("|---:|---:|---:|---:|---:|")
    for events in args.events:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "journal.sqlite3"
            build(path, events)
            cold = timed(integrity.check, path) if drop_cache(path) else float("nan")
            warm = timed(integrity.check, path)
            full = timed(full_check, path)
            size = path.stat().st_size / 1e6
            print(f"| {events:,} | {size:.0f} | {cold:.2f} | {warm:.2f} | {full:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
