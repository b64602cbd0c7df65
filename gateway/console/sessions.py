"""Console sessions that survive a gateway restart: a desk must never go blind because the
gateway restarted (a crash, an update, a power cut).

Each login makes a random token (the cookie); the store keeps only its SHA-256, with the
operator's name, a fingerprint of that operator's password hash and the expiry (wall-clock
unix seconds), in ``<storage>/console-sessions.json``: owner-only (0600), rewritten
atomically (temp file, fsync, rename, fsync of the folder) on every login and logout, so a
session handed out is on disk before its cookie is. The CSRF token is derived from the
cookie's token (HMAC), so it is never stored either. On load, expired sessions, sessions of
operators no longer configured and sessions from before an operator's password changed are
dropped. An unreadable or corrupt file is logged and ignored: everyone logs in again, the
gateway runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.core.ports import Clock

log = logging.getLogger(__name__)

FILE_NAME = "console-sessions.json"
MAX_SESSIONS = 1000  # the oldest go first past this: a desk has a handful of guards


@dataclass(frozen=True, slots=True)
class Session:
    """A live login. ``token`` is the cookie value (only in memory, never on disk)."""

    token: str
    name: str
    expires: float  # wall-clock unix seconds

    @property
    def key(self) -> str:
        return _digest(self.token)

    @property
    def csrf(self) -> str:
        """The session's CSRF token: derived from the cookie, so nothing else is stored."""
        return hmac.new(self.token.encode(), b"console-csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


@dataclass(frozen=True, slots=True)
class _Stored:
    name: str
    expires: float
    fingerprint: str


class Sessions:
    """Sessions by cookie value, each valid for ``minutes`` from login (not sliding).

    ``path`` is the store file (None keeps sessions in memory only, for tests);
    ``fingerprint(name)`` is the operator's current password-hash fingerprint, or None when
    the operator is no longer configured.
    """

    def __init__(self, clock: Clock, minutes: int, path: Path | None = None,
                 fingerprint: Callable[[str], str | None] = lambda name: "") -> None:
        self._clock = clock
        self._ttl_s = minutes * 60.0
        self._path = path
        self._fingerprint = fingerprint
        self._by_key: dict[str, _Stored] = {}
        self.load_error: str | None = None
        self._version = 0  # bumped by every change; a stale write never replaces a newer one
        self._written = 0
        self._write_lock = threading.Lock()

    def load(self) -> int:
        """Read the store (at start); returns how many sessions are still valid."""
        if self._path is None:
            return 0
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
            entries = raw["sessions"]
            loaded = {str(k): _Stored(str(v["name"]), float(v["expires"]),
                                      str(v["fingerprint"])) for k, v in entries.items()}
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("event=console_sessions_unreadable path=%s error=%r",
                        self._path, self.load_error)
            return 0
        now = self._clock.wall()
        self._by_key = {k: v for k, v in loaded.items()
                        if v.expires > now and self._fingerprint(v.name) == v.fingerprint}
        return len(self._by_key)

    async def create(self, name: str) -> Session:
        """A new session for ``name``, on disk before it is returned."""
        self._purge()
        session = Session(secrets.token_urlsafe(32), name, self._clock.wall() + self._ttl_s)
        self._by_key[session.key] = _Stored(name, session.expires, self._fingerprint(name) or "")
        while len(self._by_key) > MAX_SESSIONS:
            oldest = min(self._by_key, key=lambda k: self._by_key[k].expires)
            del self._by_key[oldest]
        await self._save()
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, expired, or its operator
        was removed from the config)."""
        if not token or len(token) > 128:
            return None
        stored = self._by_key.get(_digest(token))
        if stored is None:
            return None
        session = Session(token, stored.name, stored.expires)
        return session if self.alive(session) else None

    def alive(self, session: Session) -> bool:
        return session.key in self._by_key and self._clock.wall() < session.expires

    def remaining_s(self, session: Session) -> float:
        return max(0.0, session.expires - self._clock.wall())

    async def end(self, session: Session) -> None:
        if self._by_key.pop(session.key, None) is not None:
            await self._save()

    def __len__(self) -> int:
        return len(self._by_key)

    def _purge(self) -> None:
        now = self._clock.wall()
        for key in [k for k, v in self._by_key.items() if v.expires <= now]:
            del self._by_key[key]

    async def _save(self) -> None:
        """Write the store off the loop (an fsync on an SD card can take tens of ms)."""
        if self._path is None:
            return
        self._version += 1
        doc = {"version": 1, "sessions": {k: asdict(v) for k, v in self._by_key.items()}}
        data = json.dumps(doc, ensure_ascii=False, indent=0).encode()
        await asyncio.to_thread(self._write, self._path, self._version, data)

    def _write(self, path: Path, version: int, data: bytes) -> None:
        with self._write_lock:
            if version > self._written:
                write_private(path, data)
                self._written = version


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, owner-only (0600), durably: a crash leaves
    the old file or the new one, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
