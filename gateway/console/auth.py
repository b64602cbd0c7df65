"""Who may use the security desk console: accounts, sessions, CSRF tokens, login throttling.

Accounts come from ``[[console.users]]`` (argon2id hashes made by ``alarm-gateway
hash-password``). Sessions live in memory only: a gateway restart logs everyone out, which
is the safe side for a desk that may be left unattended. Each session carries its own CSRF
token; the page sends it back in the ``X-CSRF-Token`` header with every action. Durations
are read from the injected clock (monotonic seconds), so tests can move time.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import hmac
import secrets
import sys
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.config.schema import ConsoleUser
from gateway.core.ports import Clock

MAX_PASSWORD_CHARS = 256


@functools.cache
def _dummy_hash() -> str:
    """A hash verified when the user name is unknown, so both answers take as long."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


class Accounts:
    """The configured operators. :meth:`verify` is CPU-heavy (argon2): run it in a thread."""

    def __init__(self, users: list[ConsoleUser], hasher: PasswordHasher | None = None) -> None:
        self._hashes = {u.name: u.password_hash for u in users}
        self._hasher = hasher or PasswordHasher()

    def __len__(self) -> int:
        return len(self._hashes)

    def verify(self, name: str, password: str) -> bool:
        """True when ``name`` is configured and ``password`` matches its hash."""
        stored = self._hashes.get(name)
        try:
            self._hasher.verify(stored or _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None


@dataclass
class Session:
    id: str
    name: str
    csrf: str
    expires: float  # clock.monotonic() seconds

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    """Sessions by cookie value, each valid for ``minutes`` from login (not sliding)."""

    def __init__(self, clock: Clock, minutes: int) -> None:
        self._clock = clock
        self._ttl_s = minutes * 60.0
        self._by_id: dict[str, Session] = {}

    def create(self, name: str) -> Session:
        self._purge()
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32),
                          self._clock.monotonic() + self._ttl_s)
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown or expired)."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if not self.alive(session):
            self._by_id.pop(session_id, None)
            return None
        return session

    def alive(self, session: Session) -> bool:
        return session.id in self._by_id and self._clock.monotonic() < session.expires

    def remaining_s(self, session: Session) -> float:
        return max(0.0, session.expires - self._clock.monotonic())

    def end(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def _purge(self) -> None:
        now = self._clock.monotonic()
        for sid in [s for s, v in self._by_id.items() if v.expires <= now]:
            del self._by_id[sid]


class LoginLimiter:
    """At most ``failures`` failed logins per client address in any ``window_s`` seconds;
    past that, logins from that address are refused until the oldest failure ages out."""

    def __init__(self, clock: Clock, failures: int = 5, window_s: float = 300.0,
                 max_addresses: int = 10_000) -> None:
        self._clock = clock
        self._failures = failures
        self._window_s = window_s
        self._max_addresses = max_addresses
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        times = self._recent(address)
        if len(times) < self._failures:
            return 0.0
        return max(1.0, times[0] + self._window_s - self._clock.monotonic())

    def failed(self, address: str) -> None:
        if address not in self._seen and len(self._seen) >= self._max_addresses:
            self._forget_idle()
        self._recent(address).append(self._clock.monotonic())

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        times = self._seen.setdefault(address, deque(maxlen=self._failures))
        horizon = self._clock.monotonic() - self._window_s
        while times and times[0] <= horizon:
            times.popleft()
        return times

    def _forget_idle(self) -> None:
        horizon = self._clock.monotonic() - self._window_s
        for address in [a for a, t in self._seen.items() if not t or t[-1] <= horizon]:
            del self._seen[address]
        if len(self._seen) >= self._max_addresses:  # still full: drop the oldest entry
            self._seen.pop(next(iter(self._seen)))


def hash_password(password: str) -> str:
    """An argon2id hash (argon2-cffi's RFC 9106 defaults) for ``[[console.users]]``."""
    return PasswordHasher().hash(password)


def run_hash_password(args: argparse.Namespace) -> int:
    """``alarm-gateway hash-password``: read a password, print its argon2id hash.

    From a terminal it asks twice (without echo); otherwise it reads the first line of
    stdin, so ``echo "$PW" | alarm-gateway hash-password`` works in scripts.
    """
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("alarm-gateway: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("alarm-gateway: empty password", file=sys.stderr)
        return 2
    if len(password) > MAX_PASSWORD_CHARS:
        print(f"alarm-gateway: password longer than {MAX_PASSWORD_CHARS} characters",
              file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
