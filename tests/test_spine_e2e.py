"""Press → journal → MQTT, end to end against a real mosquitto."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import write_site
from gpiozero.pins.mock import MockFactory
from mqtt_helpers import MqttCollector

from gateway.app import Gateway
from gateway.config.schema import load_config

INPUTS = {"press", "hold", "release"}  # the device's own events (alarm_state ones follow them)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def run_gateway(config_path: Path, body: Callable[[Gateway, Any], Awaitable[None]]) -> None:
    """Run an in-process gateway on MockFactory around ``body(gateway, factory)``."""

    async def main() -> None:
        factory = MockFactory()
        gw = Gateway(load_config(config_path), simulate=True, pin_factory=factory)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await asyncio.wait_for(gw.ready.wait(), 10)
        try:
            await body(gw, factory)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        factory.reset()

    asyncio.run(main())


async def wait(collector: MqttCollector, predicate: Callable[[list[Any]], Any], timeout: float = 10) -> Any:
    return await asyncio.to_thread(collector.wait_for, predicate, timeout)


def test_press_arrives_on_events_with_every_field(tmp_path: Path, broker, collector) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)

    async def body(gw: Gateway, factory: MockFactory) -> None:
        await asyncio.to_thread(factory.pin(17).drive_low)  # another thread, as lgpio's
        await wait(collector, lambda ms: [e for e in collector.events("press")])

    run_gateway(config, body)
    press = collector.events("press")[0]
    assert set(press) == {"id", "seq", "ts", "site", "ward", "room", "device", "kind", "type",
                          "value", "drill", "alarm_id"}
    uuid.UUID(press["id"])
    assert TS.match(press["ts"])
    assert press["site"] == "bv-test" and press["ward"] == "cap-cuu" and press["room"] == "Quầy tiếp đón"
    assert press["device"] == "er-desk-1" and press["kind"] == "panic_button" and press["value"] == 0
    assert press["drill"] is False
    msg = next(m for m in collector.on("/events") if m.json()["type"] == "press")
    assert msg.qos == 1 and not msg.retain and msg.topic == "alarmgw/bv-test/events"
    journal = sqlite3.connect(tmp_path / "var" / "journal.sqlite3")
    row = journal.execute("SELECT id, type FROM events WHERE seq=?", (press["seq"],)).fetchone()
    assert row == (press["id"], "press")


def test_state_retained_for_late_subscriber_and_hold(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    early = MqttCollector(broker.port)
    early.start("alarmgw/bv-test/events")

    async def body(gw: Gateway, factory: MockFactory) -> None:
        await asyncio.to_thread(factory.pin(17).drive_low)
        # held past hold_s (1.0 s): a hold event follows, without further input
        await wait(early, lambda ms: [e for e in early.events("hold")])
        await asyncio.to_thread(factory.pin(17).drive_high)
        await wait(early, lambda ms: [e for e in early.events("release")])
        late = MqttCollector(broker.port)
        late.start("alarmgw/bv-test/device/+/state", "alarmgw/bv-test/gateway/#")
        try:
            state = await wait(late, lambda ms: [m for m in ms if m.topic.endswith("er-desk-1/state")])
            assert state[0].retain and state[0].qos == 1
            doc = state[0].json()
            assert doc["state"] == "alarm" and doc["ward"] == "cap-cuu" and doc["kind"] == "panic_button"
            assert set(doc) >= {"device", "ward", "room", "kind", "state", "battery_mv", "last_seen"}
            other = await wait(late, lambda ms: [m for m in ms if m.topic.endswith("exam-3/state")])
            assert other[0].json()["state"] == "normal"
            status = await wait(late, lambda ms: [m for m in ms if m.topic.endswith("gateway/status")])
            assert status[0].payload == b"online" and status[0].retain
            health = await wait(late, lambda ms: [m for m in ms if m.topic.endswith("gateway/health")])
            assert "journal" in health[0].json() and health[0].retain
        finally:
            late.stop()

    run_gateway(config, body)
    types = [e["type"] for e in early.events() if e["device"] == "er-desk-1" and e["type"] in INPUTS]
    assert types == ["press", "hold", "release"]
    assert early.events("hold")[0]["value"] >= 1
    early.stop()


def test_bounce_on_the_pin_gives_one_press(tmp_path: Path, broker, collector) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)

    async def body(gw: Gateway, factory: MockFactory) -> None:
        pin = factory.pin(27)

        def bounce() -> None:
            for _ in range(5):
                pin.drive_low()
                pin.drive_high()
            pin.drive_low()

        await asyncio.to_thread(bounce)
        await wait(collector, lambda ms: collector.events("press"))
        await asyncio.to_thread(pin.drive_high)
        await wait(collector, lambda ms: collector.events("release"))

    run_gateway(config, body)
    exam = [e["type"] for e in collector.events() if e["device"] == "exam-3" and e["type"] in INPUTS]
    assert exam == ["press", "release"]


def test_events_query_cli(tmp_path: Path, broker, collector) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    config = write_site(tmp_path, broker.port)

    async def body(gw: Gateway, factory: MockFactory) -> None:
        await asyncio.to_thread(factory.pin(17).drive_low)
        await wait(collector, lambda ms: collector.events("press"))

    run_gateway(config, body)
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "events", "-c", str(config),
                          "--json", "--since", "1h"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    types = [json.loads(line)["type"] for line in out.stdout.splitlines()]
    assert "press" in types and "gateway_start" in types
    table = subprocess.run([sys.executable, "-m", "gateway.cli", "events", "-c", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert "er-desk-1" in table.stdout
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "events", "-c", str(config),
                          "--since", "yesterday-ish"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr
