"""``alarm-gateway events``: the journal for people (a table) and programs (JSON lines).

Reads through a read-only connection, so it is safe beside a running gateway.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

from gateway.config.schema import SiteConfig
from gateway.core.clock import parse_rfc3339
from gateway.core.errors import CommandError, JournalError

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
        raise CommandError(
            f"--since {text!r}: use a duration (90s, 15m, 2h, 3d) or an RFC 3339 time"
        ) from None


def read_events(journal: Path, since: float, limit: int) -> list[dict[str, object]]:
    if not journal.exists():
        raise JournalError(f"no journal at {journal} (has the gateway run with this config?)")
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT body FROM events WHERE ts >= ? ORDER BY seq LIMIT ?", (since, limit)
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {journal}: {exc}") from exc
    out = []
    for (body,) in rows:
        event = json.loads(body)
        event.pop("_ts", None)
        out.append(event)
    return out


def print_events(config: SiteConfig, since: str | None, as_json: bool, limit: int) -> int:
    from gateway.paths import JOURNAL_FILE, storage_dir

    events = read_events(storage_dir(config) / JOURNAL_FILE, parse_since(since, time.time()), limit)
    if as_json:
        for event in events:
            print(json.dumps(event, ensure_ascii=False))
        return 0
    print(f"{'SEQ':>6}  {'TIME (UTC)':<24}  {'TYPE':<22}  {'DEVICE':<16}  {'WARD':<12}  DETAIL")
    for e in events:
        detail = json.dumps(e.get("detail"), ensure_ascii=False) if e.get("detail") else ""
        drill = "[drill] " if e.get("drill") else ""
        print(
            f"{e['seq']:>6}  {e['ts']:<24}  {e['type']:<22}  {e.get('device') or '-':<16}  "
            f"{e.get('ward') or '-':<12}  {drill}{detail[:80]}"
        )
    print(f"({len(events)} events)")
    return 0
