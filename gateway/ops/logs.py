"""Structured log lines on stdout: ``ts=… level=… logger=… event=… key=value …``.

Messages are written as ``event=name key=value`` by convention, so one grep or a log
shipper can parse them; the formatter adds time, level and logger in front.
"""

from __future__ import annotations

import logging
import sys

from gateway.core.clock import rfc3339


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={rfc3339(record.created)} level={record.levelname.lower()} "
            f"logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            line += " traceback=" + repr(self.formatException(record.exc_info))
        return line


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is now (it may be swapped, e.g. by a test runner)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def setup_logging(debug: bool = False) -> None:
    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("aiomqtt", "asyncio", "amqtt", "transitions", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
