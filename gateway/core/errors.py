"""One exception root for the gateway; leaves also inherit the matching builtin.

Foreign errors (sqlite3, OSError, paho) are translated at the boundary with ``raise … from``
so that the command line can print one clear line for any ``GatewayError``.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError, ValueError):
    """The configuration is unusable; ``errors`` holds one ``(path, reason)`` per problem."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{p}: {r}" if p else r for p, r in errors))

    def lines(self) -> list[str]:
        return [f"{p}: {r}" if p else r for p, r in self.errors]


class JournalError(GatewayError, OSError):
    """The journal could not be opened or written (disk full, permissions, corruption)."""


class HardwareError(GatewayError, OSError):
    """A driver could not claim its hardware (a busy GPIO pin, a missing serial port)."""


class CommandError(GatewayError, ValueError):
    """A command (MQTT, control socket, web console) is malformed or impossible."""


class StartRefused(GatewayError, RuntimeError):
    """The gateway will not start on this storage as it is (another gateway holds it, its
    journal is missing or damaged); the message says what to do. Exit code 2."""


class MissingExtraError(GatewayError, ImportError):
    """An optional feature's packages are not installed; the message names the extra."""
