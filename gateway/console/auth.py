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
import multiprocessing
import os
import secrets
import sys
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.config.schema import ConsoleUser
from gateway.console import argon2_worker

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
        stored, known = self.hash_to_check(name)
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return known

    def hash_to_check(self, name: str) -> tuple[str, bool]:
        """The hash a password for ``name`` is checked against (a dummy one for an unknown
        name, so both answers take as long), and whether ``name`` is configured."""
        stored = self._hashes.get(name)
        return (stored, True) if stored is not None else (_dummy_hash(), False)


class PasswordChecks:
    """argon2 verification on the console's own small, bounded pool.

    Each check costs ~65 MiB and ~0.2 s of every core it can use (argon2-cffi's defaults,
    4 lanes). They run in ``workers`` processes of their own, started with ``spawn`` and
    ``nice``-d (:mod:`gateway.console.argon2_worker`), so the kernel runs the gateway's
    event loop first; ``isolated=False`` uses threads instead (cheap hashes in tests). At
    most ``waiting`` more may queue: past that :meth:`admit` says no at once ("busy, try
    again"), so a login flood costs a bounded queue and low-priority CPU, and the alarm
    path keeps the loop and its own threads.
    """

    def __init__(self, accounts: Accounts, *, workers: int = 1, waiting: int = 4,
                 isolated: bool = True) -> None:
        self._accounts = accounts
        self._workers = workers
        self._isolated = isolated
        self._pool: Executor | None = None
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
        loop = asyncio.get_running_loop()
        try:
            if not self._isolated:
                return await loop.run_in_executor(self._executor(), self._accounts.verify,
                                                  name, password)
            stored, known = self._accounts.hash_to_check(name)
            try:
                ok = await loop.run_in_executor(self._executor(), argon2_worker.verify,
                                                stored, password)
            except BrokenProcessPool:  # the worker died (out of memory, killed): a new one
                self._pool = None
                raise
            return ok and known
        finally:
            self._busy -= 1

    def warm(self) -> None:
        """Start the worker now (at start-up), not on the first login: a spawned process
        takes a moment to import argon2, longer on a busy machine."""
        self._executor().submit(int)

    def _executor(self) -> Executor:
        if self._pool is None:
            if self._isolated:
                self._pool = ProcessPoolExecutor(
                    self._workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=argon2_worker.lower_priority, initargs=(os.getpid(),))
            else:
                self._pool = ThreadPoolExecutor(self._workers,
                                                thread_name_prefix="console-argon2")
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


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
