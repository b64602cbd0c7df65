"""The one reopen loop of the serial bus and the modem, on a real pty: a port that is not
there yet is reported and retried with backoff; once it opens it is served; a session that
went well starts the backoff over."""

from __future__ import annotations

import asyncio
import os
import select
from pathlib import Path
from typing import Any

import pytest

from drivers.serialport import keep_open
from gateway.core.backoff import Backoff


class Stop(Exception):
    """Ends the otherwise endless loop from inside the test."""


def test_a_missing_port_is_retried_with_backoff_then_served(tmp_path: Path) -> None:
    master, slave = os.openpty()
    link = tmp_path / "ttyNODE"
    failures: list[str] = []
    waits: list[float] = []
    served: list[bytes] = []

    def open_failed(reason: str) -> None:
        failures.append(reason)
        if len(failures) == 2:  # the cable is plugged in
            link.symlink_to(os.ttyname(slave))

    async def serve(port: Any) -> bool:
        try:
            os.write(master, b"HB\n")
            readable, _, _ = await asyncio.to_thread(select.select, [port.fileno()], [], [], 5)
            served.append(port.read(16) if readable else b"")
        finally:
            port.close()
        if len(served) == 3:
            raise Stop
        return len(served) == 2  # the first session failed early, the second went well

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def scenario() -> None:
        with pytest.raises(Stop):
            await keep_open(str(link), 115200, serve=serve, on_open_failed=open_failed,
                            backoff=Backoff(first_s=0.1, cap_s=0.3), sleep=sleep)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        os.close(master)
        os.close(slave)
    assert len(failures) == 2 and all(f.startswith(f"cannot open {link}:") for f in failures)
    assert served == [b"HB\n"] * 3
    # two failed opens and a failed session back off (capped); a good session starts over
    assert waits == [0.1, 0.2, 0.3, 0.1]


def test_an_open_failure_may_be_reported_asynchronously(tmp_path: Path) -> None:
    reported: list[str] = []

    async def open_failed(reason: str) -> None:
        reported.append(reason)
        if len(reported) == 3:
            raise Stop

    async def serve(port: Any) -> bool:  # never reached: the port never exists
        raise AssertionError("served a missing port")

    async def sleep(seconds: float) -> None:
        return None

    async def scenario() -> None:
        with pytest.raises(Stop):
            await keep_open(str(tmp_path / "missing"), 9600, serve=serve,
                            on_open_failed=open_failed, backoff=Backoff(), sleep=sleep)

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert len(reported) == 3
