"""Before the journal is opened: is it this storage's journal, and is it whole?

A journal deleted by mistake would silently restart ``seq`` at 1 and forget every open alarm
and police timer; a damaged one would keep ACKing presses it may not be able to read back.
So the storage folder keeps the journal's identity (a random id, in ``journal.id`` beside
it and inside the journal's ``kv`` table), and at start:

- no journal and no ``journal.id``: a first start; a new journal gets a new identity;
- no journal but a ``journal.id``: the gateway ran here before and its journal is gone:
  refused, unless ``--new-journal`` says to start an empty one;
- a journal that fails :func:`gateway.journal.integrity.check`, or whose identity is not
  the folder's: refused, unless ``--new-journal``, which moves it aside (never deletes it);
- ``--new-journal`` with a healthy journal of this storage changes nothing (a flag left in
  a unit file can never throw a good journal away).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import JournalError, StartRefused
from gateway.journal import integrity
from gateway.journal.store import SCHEMA, connect

log = logging.getLogger(__name__)

IDENTITY_FILE = "journal.id"
IDENTITY_KEY = "journal_identity"
SIDECARS = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class Prepared:
    """What :func:`prepare` found and did, for the start event and the log."""

    identity: str
    #: "" when the journal was kept; else why a new one was started: "first start",
    #: "missing", "damaged", "foreign"
    started_new: str = ""
    replaced: str = ""  # the identity of the journal given up, when known
    moved_to: str = ""  # where a damaged or foreign journal was moved


def prepare(path: Path, *, new_journal: bool) -> Prepared:
    """Check the journal at ``path`` before it is opened (blocking). Raise
    :class:`StartRefused` with one line that says what to do when it cannot be used."""
    folder = path.parent
    id_file = folder / IDENTITY_FILE
    expected = _read_id_file(id_file)
    if not path.exists():
        if expected and not new_journal:
            raise StartRefused(
                f"journal {path} is missing, but this storage folder held journal {expected} "
                "(the gateway ran here before): restore it, or start an empty journal with "
                "'alarm-gateway run --new-journal' (open alarms and police timers are lost)")
        _move_aside(path, "orphan")  # a -wal without its database must not be replayed
        return _start_new(path, id_file, "missing" if expected else "first start", expected)
    problems = integrity.check(path)
    if problems:
        if not new_journal:
            raise StartRefused(
                f"journal {path} is damaged ({problems[0]}): move it aside and start an empty "
                "journal with 'alarm-gateway run --new-journal' (it is kept, renamed)")
        moved = _move_aside(path, "damaged")
        return _start_new(path, id_file, "damaged", expected, moved)
    stored = _read_kv_identity(path)
    if expected and stored and stored != expected:
        if not new_journal:
            raise StartRefused(
                f"journal {path} is journal {stored}, but this storage folder's is {expected}: "
                "put the right journal back, or start an empty one with "
                "'alarm-gateway run --new-journal' (this one is kept, renamed)")
        moved = _move_aside(path, "foreign")
        return _start_new(path, id_file, "foreign", expected, moved)
    if new_journal:
        log.warning("event=new_journal_ignored reason=journal_healthy path=%s", path)
    identity = stored or expected or _new_id()
    if not stored:  # a journal from before identities: adopt it
        _write_kv_identity(path, identity)
    if expected != identity:
        _write_id_file(id_file, identity)
    return Prepared(identity)


def _start_new(path: Path, id_file: Path, why: str, replaced: str,
               moved: str = "") -> Prepared:
    identity = _new_id()
    _write_kv_identity(path, identity)
    _write_id_file(id_file, identity)
    if why != "first start":
        log.warning("event=journal_started_new reason=%s replaced=%s moved_to=%s identity=%s",
                    why, replaced or "-", moved or "-", identity)
    return Prepared(identity, why, replaced, moved)


def _new_id() -> str:
    return str(uuid.uuid4())


def _move_aside(path: Path, why: str) -> str:
    """Rename the journal and its WAL files to ``<name>.<why>-<time>``; return the new name
    of the journal ("" when there was none)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", *SIDECARS):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return str(target) if target.exists() else ""


def _read_id_file(id_file: Path) -> str:
    try:
        return id_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(f"journal identity {id_file}: {exc}") from exc


def _write_id_file(id_file: Path, identity: str) -> None:
    """Write atomically and durably: a half-written identity would refuse the next start."""
    tmp = id_file.with_name(id_file.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{identity}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, id_file)
        dir_fd = os.open(id_file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise JournalError(f"journal identity {id_file}: {exc.strerror}") from exc


def _read_kv_identity(path: Path) -> str:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            row = conn.execute("SELECT value FROM kv WHERE key=?", (IDENTITY_KEY,)).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return ""
        raise JournalError(f"journal {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: {exc}") from exc
    if row is None:
        return ""
    value = str(row[0])
    with contextlib.suppress(ValueError):
        value = str(json.loads(value))
    return value


def _write_kv_identity(path: Path, identity: str) -> None:
    try:
        # the journal's own settings: this is usually the connection that creates the file,
        # and only the first one can choose its page size (1 KiB, docs/benchmarks.md)
        conn = connect(path)
        try:
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?,?)",
                         (IDENTITY_KEY, json.dumps(identity)))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: {exc}") from exc
