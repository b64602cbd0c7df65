"""The local control socket: how other processes on the Pi talk to a running gateway.

A Unix socket in the storage folder (owner-only), one JSON object per line each way. The
``drill`` command line, the simulator and the tests use it. Commands that drive simulated
hardware (``press``, ``release``, ...) are registered only when the gateway runs on
MockFactory, so a production gateway cannot be "pressed" from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.core.errors import CommandError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_LINE = 64 * 1024


class ControlServer:
    """The owner-only Unix control socket: one JSON request per line, one answer each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None
        self.rejected = 0

    def register(self, command: str, handler: Handler) -> None:
        self._handlers[command] = handler

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path),
                                                           limit=MAX_LINE)
        finally:
            os.umask(old)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await _send(writer, {"ok": False, "error": "line too long"})
                    break
                if not line:
                    break
                await _send(writer, await self.handle(line))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise CommandError("a request is a JSON object with a string 'cmd'")
            handler = self._handlers.get(request["cmd"])
            if handler is None:
                raise CommandError(f"unknown command {request['cmd']!r}; known: "
                                   + ", ".join(sorted(self._handlers)))
            return {"ok": True, **await handler(request)}
        except asyncio.CancelledError:
            raise
        except (ValueError, CommandError, KeyError, TypeError) as exc:
            self.rejected += 1
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("event=control_command_failed")
            return {"ok": False, "error": f"internal error: {exc}"}


async def _send(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    writer.write(json.dumps(payload, ensure_ascii=False).encode() + b"\n")
    await writer.drain()


async def request(path: Path, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one command to a running gateway and return its answer (client side)."""
    async def exchange() -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE)
        try:
            writer.write(json.dumps(payload).encode() + b"\n")
            await writer.drain()
            answer = json.loads(await reader.readline())
            return answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"}
        finally:
            writer.close()

    async with asyncio.timeout(timeout):
        return await exchange()


def request_sync(path: Path, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One request to the control socket at ``path``, from synchronous code (the CLI)."""
    return asyncio.run(request(path, payload, timeout))
