"""Reading the journal from outside the gateway: filters and pages over ``events``.

A read-only SQLite connection, so it is safe beside a running gateway. A query never
returns more than ``limit`` events and always says whether more exist on either side, so
``alarm-gateway events`` can tell the technician how to page (``--before SEQ`` /
``--after SEQ``) instead of cutting silently.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.clock import parse_rfc3339
from gateway.core.errors import CommandError, JournalError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CODE = re.compile(r"^\d{4}$")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class EventQuery:
    """Which events: all filters are ANDed; ``types`` is any of. ``alarm`` is an alarm id
    (or its first characters) or a 4-digit code. Paging: ``after`` returns the ``limit``
    events after that seq, ``before`` the ``limit`` events before it; with neither, the
    first ``limit`` from ``since`` when it is given, else the newest ``limit``."""

    since: float = 0.0
    device: str | None = None
    ward: str | None = None
    types: tuple[str, ...] = ()
    alarm: str | None = None
    after: int | None = None
    before: int | None = None
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """Events in journal order; ``earlier``/``later``: matching events exist before the
    first / after the last one shown."""

    events: list[dict[str, Any]]
    earlier: bool
    later: bool


def connect_readonly(journal: Path, *, timeout_s: float = 5.0) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``, ``query_only``): every reader of the
    journal outside the gateway (``events``, ``report``) opens it here. WAL readers never
    block the gateway's writer; ``timeout_s`` bounds the wait for a checkpoint."""
    if not journal.exists():
        raise JournalError(f"no journal at {journal} (has the gateway run with this config?)")
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=timeout_s)
        conn.execute("PRAGMA query_only=1")
    except sqlite3.Error as exc:
        raise JournalError(f"journal {journal}: {exc}") from exc
    return conn


@contextmanager
def _connect(journal: Path) -> Iterator[sqlite3.Connection]:
    conn = connect_readonly(journal)
    try:
        yield conn
    except sqlite3.Error as exc:
        raise JournalError(f"journal {journal}: {exc}") from exc
    finally:
        conn.close()


def _where(conn: sqlite3.Connection, q: EventQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = ["ts >= ?"]
    args: list[Any] = [q.since]
    if q.device:
        clauses.append("device = ?")
        args.append(q.device)
    if q.ward:
        clauses.append("json_extract(body, '$.ward') = ?")
        args.append(q.ward)
    if q.types:
        clauses.append(f"type IN ({','.join('?' * len(q.types))})")
        args += list(q.types)
    if q.alarm:
        ids = _alarm_ids(conn, q.alarm)
        clauses.append(f"alarm_id IN ({','.join('?' * len(ids))})" if ids else "0")
        args += ids
    return " AND ".join(clauses), args


def _alarm_ids(conn: sqlite3.Connection, wanted: str) -> list[str]:
    """Alarm ids for an id prefix, or for a 4-digit code (every alarm that had it)."""
    if _CODE.match(wanted):
        rows = conn.execute("SELECT payload FROM retained WHERE topic LIKE 'alarm/%'")
        ids = []
        for (payload,) in rows:
            doc = _json(payload)
            if doc.get("code") == wanted and isinstance(doc.get("id"), str):
                ids.append(doc["id"])
        return ids
    rows = conn.execute("SELECT DISTINCT alarm_id FROM events WHERE alarm_id LIKE ? || '%'",
                        (wanted,))
    return [r[0] for r in rows]


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "null")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_page(journal: Path, q: EventQuery) -> Page:
    """One page of matching events (at most ``q.limit``), and whether more exist."""
    with _connect(journal) as conn:
        where, args = _where(conn, q)
        backwards = q.after is None and (q.before is not None or q.since == 0.0)
        if q.after is not None:
            where += " AND seq > ?"
            args.append(q.after)
        if q.before is not None:
            where += " AND seq < ?"
            args.append(q.before)
        order = "DESC" if backwards else "ASC"
        rows = conn.execute(f"SELECT seq, body FROM events WHERE {where} ORDER BY seq {order} "
                            "LIMIT ?", (*args, q.limit + 1)).fetchall()
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        if backwards:
            rows.reverse()
        events = [_event(body) for _, body in rows]
        if not events:
            return Page([], earlier=False, later=False)
        first, last = rows[0][0], rows[-1][0]
        base, base_args = _where(conn, q)
        earlier = more if backwards else _exists(conn, base, base_args, "seq < ?", first)
        later = _exists(conn, base, base_args, "seq > ?", last) if backwards else more
    return Page(events, earlier, later)


def _exists(conn: sqlite3.Connection, where: str, args: list[Any], extra: str, seq: int) -> bool:
    row = conn.execute(f"SELECT 1 FROM events WHERE {where} AND {extra} LIMIT 1",
                       (*args, seq)).fetchone()
    return row is not None


def read_after(journal: Path, q: EventQuery, seq: int) -> list[dict[str, Any]]:
    """Matching events after ``seq``, oldest first (for ``--follow``)."""
    with _connect(journal) as conn:
        where, args = _where(conn, q)
        rows = conn.execute(f"SELECT body FROM events WHERE {where} AND seq > ? ORDER BY seq "
                            "LIMIT 1000", (*args, seq)).fetchall()
    return [_event(body) for (body,) in rows]


def last_seq(journal: Path) -> int:
    """The highest ``seq`` in the journal file (0 when empty), read-only."""
    with _connect(journal) as conn:
        row = conn.execute("SELECT MAX(seq) FROM events").fetchone()
    return int(row[0] or 0)


def _event(body: str) -> dict[str, Any]:
    event = _json(body)
    event.pop("_ts", None)
    return event
