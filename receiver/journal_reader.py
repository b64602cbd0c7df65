"""``alarm-receiver events``: the receiver's journal for people (a table) and programs (JSON).

Reads through a read-only connection, so it is safe beside a running receiver.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from gateway.core.clock import parse_rfc3339, rfc3339
from gateway.core.errors import CommandError, JournalError
from receiver.config import ReceiverConfig

JOURNAL_FILE = "receiver.sqlite3"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str | None, now: float) -> float:
    """Unix seconds from ``15m``/``2h``/``3d`` back from ``now``, or an RFC 3339 time."""
    if not text:
        return 0.0
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return parse_rfc3339(text.strip())
    except ValueError:
        raise CommandError(f"--since {text!r}: use a duration (90s, 15m, 2h, 3d) or an "
                           "RFC 3339 time") from None


def read_events(path: Path, since: float, limit: int) -> list[dict[str, Any]]:
    if not path.exists():
        raise JournalError(f"no journal at {path} (has the receiver run with this config?)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT seq, ts, type, site, detail FROM events WHERE ts >= ? "
                                "ORDER BY seq LIMIT ?", (since, limit)).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: {exc}") from exc
    return [{"seq": seq, "ts": rfc3339(ts), "type": type_, "site": site,
             "detail": json.loads(detail)} for seq, ts, type_, site, detail in rows]


def print_events(config: ReceiverConfig, since: str | None, as_json: bool, limit: int) -> int:
    events = read_events(config.storage_dir / JOURNAL_FILE, parse_since(since, time.time()),
                         limit)
    if as_json:
        for event in events:
            print(json.dumps(event, ensure_ascii=False))
        return 0
    print(f"{'SEQ':>6}  {'TIME (UTC)':<24}  {'TYPE':<16}  {'SITE':<16}  DETAIL")
    for e in events:
        detail = {k: v for k, v in e["detail"].items() if k != "body"}
        text = json.dumps(detail, ensure_ascii=False) if detail else ""
        print(f"{e['seq']:>6}  {e['ts']:<24}  {e['type']:<16}  {e['site'] or '-':<16}  "
              f"{text[:100]}")
    print(f"({len(events)} events)")
    return 0
