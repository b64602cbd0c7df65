"""The MQTT link against a real mosquitto: ``online`` on connect, events in journal order and
retained documents, commands with their retain flag, a broker restart survived without
losing what was committed meanwhile, and ``offline`` on a clean stop."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
from mqtt_helpers import Broker, MqttCollector
from waiting import apoll_until

from gateway.core.clock import SystemClock
from gateway.journal.store import Batch, Journal
from gateway.mqtt.link import BrokerSettings, MqttLink

BASE = "alarmgw/bv-test"


def settings(port: int) -> BrokerSettings:
    return BrokerSettings(host="127.0.0.1", port=port, tls=False, username=None, password=None,
                          ca_file=None, client_cert=None, client_key=None, keepalive_s=10,
                          client_id=f"link-test-{uuid.uuid4().hex[:8]}", base=BASE)


def event(n: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "ts": "2026-11-24T00:00:00.000Z", "_ts": 1.0,
            "site": "bv-test", "type": "press", "device": f"b{n}", "value": 0, "drill": False,
            "alarm_id": None}


def run_link(tmp_path: Path, broker: Broker,
             body: Callable[[MqttLink, Journal], Awaitable[None]],
             before: Callable[[MqttLink], None] | None = None) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path / "j.sqlite3")
        journal.open()
        await journal.start()
        link = MqttLink(settings(broker.port), journal, SystemClock())
        if before is not None:
            before(link)  # e.g. the command callback, in place before the first session
        task = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            await body(link, journal)
        finally:
            await link.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await journal.stop()
            journal.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def devices_seen(collector: MqttCollector) -> list[str]:
    return [json.loads(m.payload)["device"] for m in collector.on("/events")]


def test_online_then_events_in_journal_order_and_retained_documents(
    tmp_path: Path, broker: Broker
) -> None:
    watcher = MqttCollector(broker.port)
    watcher.start(f"{BASE}/#")

    async def body(link: MqttLink, journal: Journal) -> None:
        await journal.commit(Batch(events=[event(n) for n in range(1, 6)],
                                   retained={"device/b1/state": {"state": "alarm"}}))
        await apoll_until(lambda: len(devices_seen(watcher)) == 5, what="5 events")

    try:
        run_link(tmp_path, broker, body)
        status = [m.payload for m in watcher.on("/gateway/status")]
        assert status[0] == b"online" and status[-1] == b"offline"  # clean stop: offline
        assert devices_seen(watcher) == [f"b{n}" for n in range(1, 6)]
        state = watcher.on("/device/b1/state")
        assert state and json.loads(state[-1].payload) == {"state": "alarm"}
    finally:
        watcher.stop()


def test_commands_arrive_with_their_retain_flag(tmp_path: Path, broker: Broker) -> None:
    # a retained command left on the broker is replayed to every new session
    publish.single(f"{BASE}/alarm/old/set", '{"action": "ack"}', qos=1, retain=True,
                   hostname="127.0.0.1", port=broker.port)
    seen: list[tuple[str, bytes, bool]] = []

    async def on_command(alarm_id: str, payload: bytes, *, retained: bool) -> None:
        seen.append((alarm_id, payload, retained))

    async def body(link: MqttLink, journal: Journal) -> None:
        await apoll_until(lambda: seen, what="the retained command")
        await asyncio.to_thread(publish.single, f"{BASE}/alarm/a1/set", '{"action": "ack"}',
                                qos=1, hostname="127.0.0.1", port=broker.port)
        await apoll_until(lambda: len(seen) == 2, what="the live command")

    run_link(tmp_path, broker, body, before=lambda link: link.on_command(on_command))
    assert seen == [("old", b'{"action": "ack"}', True), ("a1", b'{"action": "ack"}', False)]


def test_a_broker_restart_loses_nothing_committed_meanwhile(tmp_path: Path, broker: Broker) -> None:
    watcher = MqttCollector(broker.port)
    watcher.start(f"{BASE}/events", f"{BASE}/gateway/status")

    async def body(link: MqttLink, journal: Journal) -> None:
        await journal.commit(Batch(events=[event(1)]))
        await apoll_until(lambda: devices_seen(watcher) == ["b1"], what="the first event")
        await asyncio.to_thread(broker.stop)
        await apoll_until(lambda: not link.connected.is_set(), what="the link noticing")
        assert await link.publish_now("gateway/health", "{}") is False  # not connected
        done = await journal.commit(Batch(events=[event(2), event(3)]))  # broker down
        assert journal.cursor("mqtt") < done.events[0].seq
        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(link.connected.wait(), 20)
        # the durable cursor passes an event only once the broker acknowledged it (QoS 1)
        await apoll_until(lambda: journal.cursor("mqtt") >= done.events[-1].seq, 20,
                          what="the events of the outage acknowledged by the broker")
        assert link.connects == 2 and link.health()["connected"]

    try:
        run_link(tmp_path, broker, body)
    finally:
        watcher.stop()
