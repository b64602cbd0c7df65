"""Who may use the wall screen: officer accounts, durable sessions, CSRF, login throttling.

Accounts come from ``[[officers]]`` (argon2id hashes, ``alarm-receiver hash-password``).
Unlike the hospital desk's console, sessions are stored in the receiver's journal (only a
SHA-256 of the cookie value, so a copy of the database opens no session): a wall screen must
come back by itself after a receiver restart, not stand at a login form while alarms arrive.
Expiry is wall-clock (unix s), fixed from login.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.core.ports import Clock
from receiver.config import Officer
from receiver.store import Batch, Store

MAX_PASSWORD_CHARS = 256


@functools.cache
def _dummy_hash() -> str:
    """Verified for an unknown name, so both answers take as long."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


class Accounts:
    """The configured officers. :meth:`verify` is CPU-heavy (argon2): run it in a thread."""

    def __init__(self, officers: list[Officer], hasher: PasswordHasher | None = None) -> None:
        self._officers = {o.name: o for o in officers}
        self._hasher = hasher or PasswordHasher()

    def __len__(self) -> int:
        return len(self._officers)

    def verify(self, name: str, password: str) -> Officer | None:
        officer = self._officers.get(name)
        try:
            self._hasher.verify(officer.password_hash if officer else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return officer

    def shown(self, name: str) -> str:
        officer = self._officers.get(name)
        return officer.shown if officer else name


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the cookie value (never stored)
    name: str
    csrf: str
    expires: float  # unix s

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Sessions in the store, valid ``minutes`` from login; checked on every request."""

    def __init__(self, store: Store, clock: Clock, minutes: int) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = minutes * 60.0

    async def create(self, name: str) -> Session:
        now = self._clock.wall()
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32),
                          now + self._ttl_s)
        await self._store.commit(Batch()
                                 .add("DELETE FROM sessions WHERE expires <= ?", now)
                                 .add("INSERT INTO sessions(hash, name, csrf, expires) "
                                      "VALUES (?,?,?,?)", _digest(session.token), name,
                                      session.csrf, session.expires))
        return session

    def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        row = self._store.one("SELECT name, csrf, expires FROM sessions WHERE hash=?",
                              _digest(token))
        if row is None or row[2] <= self._clock.wall():
            return None
        return Session(token, row[0], row[1], float(row[2]))

    def alive(self, session: Session) -> bool:
        return self.get(session.token) is not None

    def remaining_s(self, session: Session) -> float:
        return max(0.0, session.expires - self._clock.wall())

    async def end(self, session: Session) -> None:
        await self._store.commit(Batch().add("DELETE FROM sessions WHERE hash=?",
                                             _digest(session.token)))


class LoginLimiter:
    """At most ``failures`` failed logins per address in any ``window_s`` seconds."""

    def __init__(self, clock: Clock, failures: int = 5, window_s: float = 300.0) -> None:
        self._clock = clock
        self._failures = failures
        self._window_s = window_s
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> float:
        times = self._recent(address)
        if len(times) < self._failures:
            return 0.0
        return max(1.0, times[0] + self._window_s - self._clock.monotonic())

    def failed(self, address: str) -> None:
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._recent(address).append(self._clock.monotonic())

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        times = self._seen.setdefault(address, deque(maxlen=self._failures))
        while times and times[0] <= self._clock.monotonic() - self._window_s:
            times.popleft()
        return times
