"""Fixtures for the alarm end-to-end tests: the simulated hotline on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alarms.alarm_helpers import SECRET
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator


@pytest.fixture
def hotline() -> Iterator[HotlineServer]:
    server = HotlineServer(SECRET)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def modem() -> Iterator[ModemSimulator]:
    """The simulated LTE modem on a real pty (``modem.port``)."""
    sim = ModemSimulator()
    sim.start()
    yield sim
    sim.stop()
