"""The serial bus inside the real gateway: firmware nodes on a pty → journal → MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import write_site
from mqtt_helpers import MqttCollector
from waiting import poll_until as wait_until

from gateway.app import Gateway
from gateway.config.schema import load_config
from simulator.nodes import BusSimulator, NodeSpec

KEY = bytes(range(16))

SERIAL_DEVICES = """
[[devices]]
id = "er-desk-1"
ward = "cap-cuu"
room = "Quầy tiếp đón"
pin = 17

[[devices]]
id = "bed-11"
ward = "cap-cuu"
room = "Giường 11"
input = "serial"
node = 11

[[devices]]
id = "bed-12"
ward = "cap-cuu"
room = "Giường 12"
input = "serial"
node = 12
key_file = "node12.key"
"""


def serial_site(tmp_path: Path, port: int, bus_port: str) -> Path:
    key = tmp_path / "node12.key"
    key.write_text(KEY.hex() + "\n")
    os.chmod(key, 0o600)
    return write_site(tmp_path, port, devices=SERIAL_DEVICES,
                      extra=f'[serial]\nport = "{bus_port}"\nsupervision_s = 600\n')


async def run_for(config: Path, body) -> None:  # type: ignore[no-untyped-def]
    gw = Gateway(load_config(config), simulate=True)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await asyncio.wait_for(gw.ready.wait(), 15)
    try:
        await body(gw)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        if gw.pin_factory is not None:
            gw.pin_factory.reset()



def test_node_press_acked_led_and_published_then_replay_rejected_after_restart(
    tmp_path: Path, broker
) -> None:  # type: ignore[no-untyped-def]
    sim = BusSimulator([NodeSpec(11), NodeSpec(12, key=KEY)], tmp_path / "bus")
    sim.start()
    collector = MqttCollector(broker.port)
    collector.start("alarmgw/bv-test/events")
    config = serial_site(tmp_path, broker.port, sim.port)
    try:
        async def first(gw: Gateway) -> None:
            await asyncio.to_thread(sim.press, 11)
            await asyncio.to_thread(collector.wait_for, lambda ms: [
                e for e in collector.events("press") if e["device"] == "bed-11"], 10)
            await asyncio.to_thread(wait_until, lambda: sim.led(11) >= 1)
            await asyncio.to_thread(sim.press, 12)
            await asyncio.to_thread(collector.wait_for, lambda ms: [
                e for e in collector.events("release") if e["device"] == "bed-12"], 10)

        asyncio.run(run_for(config, first))
        press = next(e for e in collector.events("press") if e["device"] == "bed-11")
        assert press["ward"] == "cap-cuu" and press["room"] == "Giường 11"
        old_frames = [f for f in sim.uplink_log() if b",12," in f and b"PRESS" in f]
        assert old_frames

        async def second(gw: Gateway) -> None:
            await asyncio.to_thread(sim.press, 12)  # a newer seq: accepted
            await asyncio.to_thread(collector.wait_for, lambda ms: len(
                [e for e in collector.events("press") if e["device"] == "bed-12"]) >= 2, 20)
            await asyncio.to_thread(sim.inject, old_frames[0])  # the old one again: a replay
            await asyncio.to_thread(collector.wait_for, lambda ms: collector.events("rejected_replay"), 10)

        asyncio.run(run_for(config, second))  # a new gateway process state: registry reloaded
        presses_12 = [e for e in collector.events("press") if e["device"] == "bed-12"]
        assert len(presses_12) == 2
        assert collector.events("rejected_replay")[0]["device"] == "bed-12"
    finally:
        collector.stop()
        sim.stop()


def test_replay_rejected_after_a_power_cut_that_kept_the_registry_stale(
    tmp_path: Path, broker
) -> None:  # type: ignore[no-untyped-def]
    """The registry file is written lazily; the seq a keyed node last had accepted is committed
    with its event, so a power cut before the registry write still rejects the old frame."""
    sim = BusSimulator([NodeSpec(12, key=KEY)], tmp_path / "bus")
    sim.start()
    collector = MqttCollector(broker.port)
    collector.start("alarmgw/bv-test/events")
    config = serial_site(tmp_path, broker.port, sim.port)
    registry_file = tmp_path / "var" / "registry.json"
    stale: list[bytes] = []
    try:
        async def first(gw: Gateway) -> None:
            await asyncio.to_thread(
                wait_until, lambda: registry_file.exists() and b'"12"' in registry_file.read_bytes())
            stale.append(registry_file.read_bytes())  # before any frame was accepted
            await asyncio.to_thread(sim.press, 12)
            await asyncio.to_thread(collector.wait_for, lambda ms: [
                e for e in collector.events("release") if e["device"] == "bed-12"], 10)

        asyncio.run(run_for(config, first))
        registry_file.write_bytes(stale[0])  # as if the power went before the lazy write
        old_frames = [f for f in sim.uplink_log() if b",12," in f and b"PRESS" in f]

        async def second(gw: Gateway) -> None:
            assert gw.serial is not None
            await asyncio.to_thread(wait_until, lambda: gw.serial.health()["connected"])
            await asyncio.to_thread(sim.inject, old_frames[0])
            await asyncio.to_thread(
                collector.wait_for, lambda ms: collector.events("rejected_replay"), 10)

        asyncio.run(run_for(config, second))
        assert collector.events("rejected_replay")[0]["device"] == "bed-12"
        assert len([e for e in collector.events("press") if e["device"] == "bed-12"]) == 1
    finally:
        collector.stop()
        sim.stop()


@contextlib.contextmanager
def bed_11(tmp_path: Path, broker: Any, spec: NodeSpec
           ) -> Iterator[tuple[BusSimulator, MqttCollector, Path]]:
    """Node 11 (``bed-11``) as ``spec`` says, beside keyed node 12, with an observer of
    bed-11's retained state and of the events; the site's config path."""
    sim = BusSimulator([spec, NodeSpec(12, key=KEY)], tmp_path / "bus")
    sim.start()
    collector = MqttCollector(broker.port)
    collector.start("alarmgw/bv-test/device/bed-11/state", "alarmgw/bv-test/events")
    try:
        yield sim, collector, serial_site(tmp_path, broker.port, sim.port)
    finally:
        collector.stop()
        sim.stop()


def states(messages: list[Any]) -> list[dict[str, Any]]:
    """bed-11's retained state documents, in the order they were published."""
    return [m.json() for m in messages if m.topic.endswith("bed-11/state")]


def test_every_frame_carrying_the_battery_updates_the_retained_state(
    tmp_path: Path, broker
) -> None:  # type: ignore[no-untyped-def]
    """A node's BOOT and PRESS frames both carry its battery: the retained
    ``device/<id>/state`` shows it (it was ``battery_mv: null`` after both)."""
    with bed_11(tmp_path, broker, NodeSpec(11, battery_mv=2950)) as (sim, collector, config):
        async def body(gw: Gateway) -> None:
            await asyncio.to_thread(sim.press, 11)
            await asyncio.to_thread(collector.wait_for, lambda ms: [
                s for s in states(ms) if s["state"] == "alarm"], 10)

        asyncio.run(run_for(config, body))
        boot = next(e for e in collector.events("boot") if e["device"] == "bed-11")
        press = next(e for e in collector.events("press") if e["device"] == "bed-11")
        shown = states(collector.messages)
        after_boot = [s for s in shown if s["last_seen"] == boot["ts"]]
        assert after_boot and after_boot[-1]["battery_mv"] == boot["detail"]["batt_mv"] > 2000
        in_alarm = [s for s in shown if s["state"] == "alarm"]
        assert in_alarm[0]["battery_mv"] == press["detail"]["batt_mv"]


def test_heartbeats_refresh_the_retained_state_without_events(
    tmp_path: Path, broker
) -> None:  # type: ignore[no-untyped-def]
    """SPEC §2: a heartbeat is not an event, but it refreshes the node's last-seen time and
    battery. A node that only heartbeats (no press for months) shows its battery falling on
    ``device/<id>/state``; the refresh is committed with the bus's periodic flush, not per
    heartbeat (the SD card)."""
    spec = NodeSpec(11, battery_mv=2950, hb_ms=200)
    with bed_11(tmp_path, broker, spec) as (sim, collector, config):
        async def body(gw: Gateway) -> None:
            assert gw.devices is not None and gw.serial is not None
            await asyncio.to_thread(sim.drain_battery, 11, 2700)
            await asyncio.to_thread(wait_until, lambda: (
                gw.devices.flags("bed-11").battery_mv == 2700), 10)  # type: ignore[union-attr]
            published = len(states(collector.messages))
            assert gw.serial.on_flush is not None
            await gw.serial.on_flush()  # what the bus does every flush_s (15 min)
            await asyncio.to_thread(collector.wait_for, lambda ms: [
                s for s in states(ms)[published:] if s["battery_mv"] == 2700], 10)

        asyncio.run(run_for(config, body))
        events = [e for e in collector.events() if e["device"] == "bed-11"]
        assert [e["type"] for e in events] == ["boot"], "heartbeats are not events"
        shown = states(collector.messages)
        assert shown[-1]["battery_mv"] == 2700 and shown[-1]["state"] == "normal"
        assert shown[-1]["last_seen"] > events[0]["ts"]
