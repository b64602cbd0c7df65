"""Login throttling that slows a password guesser down without ever locking the desk out.

At a kiosk PC, or through the documented SSH tunnel, every guard logs in from 127.0.0.1: a
lock per address would lock out the whole desk. So the delays are short and grow, and they
are kept per *account and address* (one guard's typos never delay another) and, more
loosely, per address (so guessing many names from one place is slowed too):

* :attr:`Rule.free` attempts in a row cost nothing;
* each further attempt must wait ``base_s · 2^k`` seconds after the previous one (1, 2, 4,
  8, 16 s, …, at most ``cap_s``): five typos, then the right password one second later;
* the right password works as soon as the delay has passed, and a success clears both keys;
* a key quiet for ``forget_s`` seconds is forgotten.

An attempt is counted when it *starts* (:meth:`LoginThrottle.reserve`), before the password
is checked, so 40 parallel requests cannot all slip through while the first checks run.
Times are monotonic seconds from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.ports import Clock


@dataclass(frozen=True, slots=True)
class Rule:
    """A throttle: ``free`` attempts in a row, then a doubling delay from ``base_s``
    up to ``cap_s`` seconds."""

    free: int  # attempts in a row without any delay
    base_s: float = 1.0
    cap_s: float = 30.0

    def delay_s(self, attempts: int) -> float:
        """Seconds the attempt after the ``attempts``-th must wait."""
        if attempts < self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** (attempts - self.free))


PER_ACCOUNT = Rule(free=5)   # per (account, address): 5 free, then 1, 2, 4 … 30 s
PER_ADDRESS = Rule(free=10)  # per address, any account


@dataclass(slots=True)
class _Key:
    attempts: int = 0
    not_before: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Growing per-account-and-address delays (see the module's docstring)."""

    def __init__(self, clock: Clock, *, account: Rule = PER_ACCOUNT,
                 address: Rule = PER_ADDRESS, forget_s: float = 900.0,
                 max_keys: int = 10_000) -> None:
        self._clock = clock
        self._rules = (account, address)
        self._forget_s = forget_s
        self._max_keys = max_keys
        self._keys: dict[tuple[str, ...], _Key] = {}

    def reserve(self, account: str, address: str) -> float:
        """Count an attempt that is about to be checked: 0.0 when it may go ahead, else the
        seconds to wait (nothing is counted then)."""
        now = self._clock.monotonic()
        keys = self._keys_for(account, address)
        wait = max(key.not_before - now for key in keys)
        if wait > 0:
            return wait
        for key, rule in zip(keys, self._rules, strict=True):
            key.attempts += 1
            key.last = now
            key.not_before = now + rule.delay_s(key.attempts)
        return 0.0

    def succeeded(self, account: str, address: str) -> None:
        """The password was right: both keys start afresh."""
        for name in self._names(account, address):
            self._keys.pop(name, None)

    def attempts(self, account: str, address: str) -> int:
        """Attempts counted for this account from this address (for the journal)."""
        key = self._keys.get(self._names(account, address)[0])
        return key.attempts if key else 0

    def __len__(self) -> int:
        return len(self._keys)

    def _names(self, account: str, address: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("account", account.casefold(), address), ("address", address)

    def _keys_for(self, account: str, address: str) -> list[_Key]:
        now = self._clock.monotonic()
        out = []
        for name in self._names(account, address):
            key = self._keys.get(name)
            if key is not None and now - key.last > self._forget_s and now >= key.not_before:
                key = None  # quiet long enough: forgotten
            if key is None:
                if len(self._keys) >= self._max_keys:
                    self._forget_idle(now)
                key = self._keys[name] = _Key()
            out.append(key)
        return out

    def _forget_idle(self, now: float) -> None:
        for name in [n for n, k in self._keys.items()
                     if now - k.last > self._forget_s and now >= k.not_before]:
            del self._keys[name]
        while len(self._keys) >= self._max_keys:  # still full: drop the oldest entries
            del self._keys[next(iter(self._keys))]
