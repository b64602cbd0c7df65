"""One scripted November, built once for the report tests (it takes a few seconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config.schema import SiteConfig, load_config
from gateway.core.clock import ManualClock
from report.month_rig import SECRET, MonthRig, at, site_config
from report.november import november
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator


@dataclass(frozen=True)
class BuiltMonth:
    config: SiteConfig
    path: Path  # the site's TOML file
    journal: Path
    ids: dict[str, Any]
    folder: Path


@pytest.fixture(scope="session")
def november_journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltMonth]:
    tmp = tmp_path_factory.mktemp("november")
    clock = ManualClock(wall_start=at(31, 23, month=10))
    hotline = HotlineServer(SECRET, now=clock.wall).start()
    modem = ModemSimulator()
    modem.start()
    try:
        path = site_config(tmp, hotline.url, modem.port)
        config = load_config(path)
        rig = MonthRig(config, hotline, modem, clock)

        async def build() -> dict[str, Any]:
            await rig.start()
            try:
                return await november(rig)
            finally:
                await rig.stop()

        ids = asyncio.run(build())
        yield BuiltMonth(config, path, rig.journal_path, ids, tmp)
    finally:
        modem.stop()
        hotline.stop()
