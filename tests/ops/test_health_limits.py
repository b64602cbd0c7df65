"""Health limits become edge-triggered trouble events; the periodic test report."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from conftest import MOSQUITTO, free_port
from mqtt_helpers import Broker, MqttCollector
from waiting import apoll_until

from gateway.config.schema import validate_config
from gateway.features.operations import NEXT_TEST_KEY, warn_weak_security
from gateway.ops.health import HealthLimits, TroubleLatch

from .helpers import control, running_gateway, site_file

LIMITS = HealthLimits(disk_free_min_mb=200, backlog_max=10, hotline_failures_max=3)


def _doc(disk: int = 5000, backlog: int = 0, failures: int | None = None) -> dict:
    doc: dict = {"disk_free_mb": disk, "journal": {"last_seq": 1, "mqtt": {"backlog": backlog}}}
    if failures is not None:
        doc["hotline"] = {"http": {"consecutive_failures": failures}}
    return doc


def _run(latch: TroubleLatch, doc: dict) -> list[tuple[str, bool]]:
    edges = latch.edges(LIMITS.check(doc, set(latch.active)))
    for key, detail in edges:
        latch.settle(key, detail)
    return [(key, detail is not None) for key, detail in edges]


def test_limits_are_edge_triggered_with_hysteresis() -> None:
    latch = TroubleLatch()
    assert _run(latch, _doc()) == []
    assert _run(latch, _doc(disk=150)) == [("disk", True)]
    assert _run(latch, _doc(disk=150)) == []              # not again every interval
    assert _run(latch, _doc(disk=205)) == []              # inside the clear margin
    assert _run(latch, _doc(disk=400)) == [("disk", False)]
    assert _run(latch, _doc(backlog=11)) == [("backlog:mqtt", True)]
    assert _run(latch, _doc(backlog=10)) == []
    assert _run(latch, _doc(backlog=9)) == [("backlog:mqtt", False)]
    assert _run(latch, _doc(failures=2)) == []
    assert _run(latch, _doc(failures=3)) == [("hotline", True)]
    assert _run(latch, _doc()) == []                      # no hotline part: state kept
    assert _run(latch, _doc(failures=0)) == [("hotline", False)]


def test_trouble_detail_names_the_limit() -> None:
    check = LIMITS.check(_doc(disk=10, backlog=50, failures=4), set())
    assert check["disk"] == {"disk_free_mb": 10, "limit_mb": 200}
    assert check["backlog:mqtt"]["backlog"] == 50 and check["backlog:mqtt"]["limit"] == 10
    assert check["hotline"] == {"failures": 4, "limit": 3}


def test_backlog_trouble_raised_once_and_cleared_end_to_end(tmp_path: Path) -> None:
    """No broker: the backlog passes its limit (one trouble event); the broker comes back:
    the backlog drains and trouble_cleared follows, both published in order."""
    port = free_port()
    config = site_file(tmp_path, port, extra="backlog_max = 2\n")
    broker = Broker(MOSQUITTO, port, tmp_path / "mosquitto")

    async def scenario() -> list[dict]:
        async with running_gateway(config) as gw:
            for _ in range(2):
                await control(gw, {"cmd": "click", "device": "exam-3", "seconds": 0.05})
            await _wait(lambda: _journal_types(gw).count("trouble") == 1)
            await asyncio.to_thread(broker.start)
            collector = MqttCollector(port)
            collector.start("alarmgw/#")
            try:
                await asyncio.to_thread(collector.wait_for,
                                        lambda ms: _types(collector).count("trouble_cleared"), 20)
                # the subscriber may connect after the reconnected gateway sent "trouble";
                # the journal is the record of order, MQTT proves the clearing got out
                return [e.to_dict() for e in gw.journal.events_after(0, 10_000)]
            finally:
                collector.stop()

    try:
        events = asyncio.run(scenario())
    finally:
        broker.stop()
    troubles = [e for e in events if e["type"] in ("trouble", "trouble_cleared")]
    assert [e["type"] for e in troubles] == ["trouble", "trouble_cleared"]
    assert troubles[0]["detail"]["what"] == "backlog"
    assert troubles[0]["detail"]["consumer"] == "mqtt"
    assert troubles[1]["detail"] == {"what": "backlog", "consumer": "mqtt"}


def _journal_types(gw) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(e.type) for e in gw.journal.events_after(0, 10_000)]


def _types(collector: MqttCollector) -> list[str]:
    return [e["type"] for e in collector.events()]


async def _wait(predicate, within: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    await apoll_until(predicate, within, what="the journal state")


def test_disk_trouble_once_across_intervals(broker: Broker, collector: MqttCollector,
                                            tmp_path: Path) -> None:
    config = site_file(tmp_path, broker.port, extra="disk_free_min_mb = 100000000\n")

    async def scenario() -> None:
        async with running_gateway(config):
            await asyncio.to_thread(collector.wait_for, lambda ms: _types(collector).count("trouble"))
            # two more health documents, then still exactly one trouble event
            seen = len(collector.on("/gateway/health"))
            await asyncio.to_thread(
                collector.wait_for, lambda ms: len(collector.on("/gateway/health")) >= seen + 2, 15)

    asyncio.run(scenario())
    troubles = collector.events("trouble")
    assert len(troubles) == 1
    assert troubles[0]["detail"]["what"] == "disk"
    assert troubles[0]["detail"]["limit_mb"] == 100000000


def test_periodic_test_report(broker: Broker, collector: MqttCollector, tmp_path: Path) -> None:
    config = site_file(tmp_path, broker.port, extra="periodic_test_h = 0.0003\n")  # ~1.1 s

    async def scenario() -> float:
        async with running_gateway(config) as gw:
            await asyncio.to_thread(collector.wait_for,
                                    lambda ms: len(collector.events("test_report")) >= 2, 15)
            return float(gw.journal.kv_all(NEXT_TEST_KEY)[NEXT_TEST_KEY])

    due = asyncio.run(scenario())
    report = collector.events("test_report")[0]
    assert report["detail"]["periodic"] is True
    assert report["device"] is None
    assert due > 0


def test_insecure_tls_settings_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "hotline.secret"
    secret.write_text("s")
    secret.chmod(0o600)
    raw = {
        "site": {"id": "s1", "name": "S"}, "wards": [{"id": "w", "name": "W"}],
        "mqtt": {"url": "mqtts://broker.example:8883", "tls_insecure": True},
        "escalation": {"http": {"url": "https://hotline.example/a", "secret_file": str(secret),
                                "insecure": True}},
    }
    config = validate_config(raw, tmp_path)

    class Stub:
        pass

    gw = Stub()
    gw.config = config  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="gateway.features.operations"):
        warn_weak_security(gw)  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("event=tls_verification_disabled where=mqtt") for m in lines)
    assert any(m.startswith("event=tls_verification_disabled where=escalation.http") for m in lines)
