"""The gateway as a real process: killed, restarted, broker away; nothing committed is lost."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from conftest import write_site
from mqtt_helpers import MqttCollector


def committed_ids(tmp_path: Path, type_: str) -> list[str]:
    conn = sqlite3.connect(tmp_path / "var" / "journal.sqlite3")
    try:
        return [r[0] for r in conn.execute("SELECT id FROM events WHERE type=? ORDER BY seq", (type_,))]
    finally:
        conn.close()


def click(gw, device: str = "er-desk-1") -> None:  # type: ignore[no-untyped-def]
    assert gw.control({"cmd": "click", "device": device, "seconds": 0.03})["ok"]


def wait_committed(tmp_path: Path, type_: str, count: int, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        ids = committed_ids(tmp_path, type_)
        if len(ids) >= count or time.monotonic() > deadline:
            return ids
        time.sleep(0.02)


def test_sigkill_gives_offline_last_will(tmp_path: Path, broker, collector, gateway_process) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_process(write_site(tmp_path, broker.port), tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    collector.wait_for(lambda ms: [m for m in ms if m.topic.endswith("gateway/status") and m.payload == b"online"])
    gw.kill()
    collector.wait_for(
        lambda ms: [m for m in ms if m.topic.endswith("gateway/status") and m.payload == b"offline"], 15)
    late = MqttCollector(broker.port)  # a late subscriber gets the retained Last Will
    late.start("alarmgw/bv-test/gateway/status")
    try:
        status = late.wait_for(lambda ms: ms)
        assert status[0].payload == b"offline" and status[0].retain
    finally:
        late.stop()


def test_sigterm_stops_cleanly_publishing_offline(tmp_path: Path, broker, collector, gateway_process) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_process(write_site(tmp_path, broker.port), tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    collector.wait_for(lambda ms: [m for m in ms if m.topic.endswith("gateway/status") and m.payload == b"online"])
    assert gw.terminate(timeout=5) == 0
    collector.wait_for(lambda ms: [m for m in ms if m.topic.endswith("gateway/status") and m.payload == b"offline"], 5)
    log = (tmp_path / "gw.log").read_text()
    assert "event=gateway_stopped" in log and "Traceback" not in log


def test_broker_outage_twenty_presses_arrive_in_order(tmp_path: Path, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    gw = gateway_process(write_site(tmp_path, broker.port), tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    first = MqttCollector(broker.port)
    first.start("alarmgw/bv-test/gateway/status")
    first.wait_for(lambda ms: [m for m in ms if m.payload == b"online"])
    first.stop()
    broker.stop()
    for _ in range(20):
        click(gw)
    pressed = wait_committed(tmp_path, "press", 20)
    assert len(pressed) == 20  # committed while the broker was away
    broker.start()
    after = MqttCollector(broker.port)
    after.start("alarmgw/bv-test/events")
    try:
        after.wait_for(lambda ms: len(after.events("press")) >= 20, 30)
        got = [e["id"] for e in after.events("press")]
        assert got == pressed  # all, in journal order, none lost
        seqs = [e["seq"] for e in after.events()]
        assert seqs == sorted(seqs)
    finally:
        after.stop()


def test_sigkill_after_presses_then_restart_publishes_every_committed_event(
    tmp_path: Path, broker, gateway_process
) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    collector = MqttCollector(broker.port)
    collector.start("alarmgw/bv-test/events")
    gw = gateway_process(config, tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    broker.stop()  # nothing can go out: the journal holds every press
    for _ in range(10):
        click(gw, "exam-3")
    wait_committed(tmp_path, "release", 10)
    gw.kill()
    committed = committed_ids(tmp_path, "press")
    assert len(committed) == 10
    broker.start()
    collector.stop()
    collector = MqttCollector(broker.port)
    collector.start("alarmgw/bv-test/events")
    again = gateway_process(config, tmp_path / "gw2.log")
    again.start()
    again.wait_ready()
    try:
        collector.wait_for(lambda ms: {e["id"] for e in collector.events("press")} >= set(committed), 30)
        ids = [e["id"] for e in collector.events("press")]
        assert set(ids) == set(committed)  # a redelivery keeps its id
    finally:
        collector.stop()
    assert again.proc.poll() is None  # still running
