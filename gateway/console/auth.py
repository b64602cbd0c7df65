"""Who may act on the security desk console: accounts and their password checks.

Accounts come from ``[[console.users]]`` (argon2id hashes made by ``alarm-gateway
hash-password``). Checks run on a small pool of their own (:class:`PasswordChecks`).
Sessions (``sessions``) and login throttling (``throttle``) live beside this module.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import hashlib
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.config.schema import ConsoleUser

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

    def known(self, name: str) -> bool:
        return name in self._hashes

    def fingerprint(self, name: str) -> str | None:
        """A short digest of the operator's password hash (None: no such operator); a
        session stored under an older fingerprint ended when the password changed."""
        stored = self._hashes.get(name)
        return hashlib.sha256(stored.encode()).hexdigest()[:16] if stored else None

    def verify(self, name: str, password: str) -> bool:
        """True when ``name`` is configured and ``password`` matches its hash."""
        stored = self._hashes.get(name)
        try:
            self._hasher.verify(stored or _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None


class PasswordChecks:
    """argon2 verification on the console's own small, bounded pool.

    Each check costs ~65 MiB and ~0.2 s of one core (argon2-cffi's defaults). They run on
    ``workers`` threads of their own (never asyncio's default pool, never the hotline's or
    the serial bus's), and at most ``waiting`` more may queue: past that :meth:`verify`
    answers None at once ("busy, try again"), so a login flood costs at most ``workers``
    cores and a bounded queue, and the alarm path keeps its own threads and the loop.
    """

    def __init__(self, accounts: Accounts, *, workers: int = 1, waiting: int = 4) -> None:
        self._accounts = accounts
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="console-argon2")
        self._slots = workers + waiting
        self._busy = 0
        self.refused = 0

    def admit(self) -> bool:
        """Take a place for one check; False when the pool and its queue are full."""
        if self._busy >= self._slots:
            self.refused += 1
            return False
        self._busy += 1
        return True

    async def verify(self, name: str, password: str) -> bool:
        """Check a password in the pool; call only after :meth:`admit` returned True."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, self._accounts.verify, name, password)
        finally:
            self._busy -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


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
