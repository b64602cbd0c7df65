"""Structured log lines on stdout: ``ts=… level=… logger=… event=… key=value …``.

Messages are written as ``event=name key=value`` by convention, so one grep or a log
shipper can parse them; the formatter adds time, level and logger in front.

Values come from outside (a console URL path, a node's frame, a command's ``by``), so every
value is escaped: a text value with a space, ``=``, a quote or a control character is
printed quoted (``alarm="x event=forged"``), control characters as ``\\n``, ``\\r``,
``\\x1b``. One record is always exactly one line: nobody can inject a log line. The
user information of any URL in a line (``user:password@``) is masked: a log is no place
for a password.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from gateway.core.clock import rfc3339
from gateway.core.redact import redact_text

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NEEDS_QUOTES = re.compile(r'[\s="\\\x00-\x1f\x7f-\x9f\u2028\u2029]')
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """``text`` with every control character (and U+2028/U+2029) written as an escape."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}")
                        if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def log_value(text: str) -> str:
    """``text`` as one unambiguous ``key=value`` value: bare when safe, else quoted."""
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + escape_controls(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


class _Value(str):
    """A text argument: ``%s`` prints it escaped, ``%r`` as Python's own (escaped) repr."""

    __slots__ = ()

    def __str__(self) -> str:
        return log_value(str.__str__(self))


def _escaped_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_Value(a) if isinstance(a, str) else a for a in args)
    if isinstance(args, dict):
        return {k: _Value(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=… logger=…`` then the message, escaped, credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={rfc3339(record.created)} level={record.levelname.lower()} "
            f"logger={record.name} {escape_controls(_message(record))}"
        )
        if record.exc_info:
            line += " traceback=" + repr(self.formatException(record.exc_info))
        return redact_text(line)


def _message(record: logging.LogRecord) -> str:
    """The record's message with its text arguments escaped (see the module docstring)."""
    msg = str(record.msg)
    if not record.args:
        return msg
    try:
        return msg % _escaped_args(record.args)
    except (TypeError, ValueError, KeyError):
        return record.getMessage()


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is now (it may be swapped, e.g. by a test runner)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def setup_logging(*, debug: bool = False) -> None:
    """One line per record on stdout (journald adds its own time)."""
    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("aiomqtt", "asyncio", "amqtt", "transitions", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
