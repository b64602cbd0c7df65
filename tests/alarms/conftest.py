"""Fixtures for the alarm end-to-end tests: the simulated hotline on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from phone import phone_view

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
    """The simulated LTE modem on a real pty (``modem.port``). At the end, every SMS it
    accepted is read again with the independent decoder (:mod:`phone`): same number, text
    and part count, in the same order, or the test fails."""
    sim = ModemSimulator()
    sim.start()
    yield sim
    sim.stop()
    seen = iter([(m.number, m.text, m.parts) for m in phone_view(sim.commands())])
    for sent in sim.sent_messages():
        assert tuple(sent) in seen, f"{sent} reads differently on the phone"
