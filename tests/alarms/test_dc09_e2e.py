"""Press → alarm receiving centre, end to end over 127.0.0.1: an in-process gateway (real
mosquitto, MockFactory buttons) reports over DC-09 to the simulated ARC, whose parsing and
answers are pysiaalarm's, so what it accepts is what an independent receiver accepts."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from alarms.alarm_helpers import alarm_site, in_thread, journal_events, run_gateway, until
from gateway.core.events import EventDraft, EventType
from receiver.dc09 import PanelAccount
from simulator.arc import ArcServer

ACCOUNT = "1A2B"
KEY = b"0123456789ABCDEF0123456789ABCDEF"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dc09_site(tmp_path: Path, broker_port: int, arc_port: int, *, key: bytes | None = None,
              link_test_s: float = 0, extra: str = "") -> Path:
    """The alarm test site with one centre, ``arc``, and fast retries."""
    path = alarm_site(tmp_path, broker_port)
    key_line = ""
    if key is not None:
        key_file = tmp_path / "arc.key"
        key_file.write_bytes(key + b"\n")
        os.chmod(key_file, 0o600)
        key_line = f'key_file = "{key_file}"\n'
    path.write_text(path.read_text(encoding="utf-8") + f"""
[escalation.dc09]
timeout_s = 2
retry_base_s = 0.05
retry_cap_s = 0.2
max_attempts = 100
{extra}
[[escalation.dc09.receivers]]
name = "arc"
host = "127.0.0.1"
port = {arc_port}
account = "{ACCOUNT}"
line = "2"
receiver = "1F"
link_test_s = {link_test_s}
{key_line}""", encoding="utf-8")
    return path


def attempts(tmp_path: Path) -> list[dict[str, Any]]:
    return [e["detail"] for e in journal_events(tmp_path, "escalation_attempt")
            if e["detail"]["channel"] == "dc09"]


async def click(factory: Any, pin: int) -> None:
    mock = factory.pin(pin)

    def press_release() -> None:
        mock.drive_low()
        mock.drive_high()

    await in_thread(press_release)


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "aes256"])
def test_panic_reaches_the_centre_and_its_restore_follows(tmp_path: Path, broker,  # type: ignore[no-untyped-def]
                                                          key: bytes | None) -> None:
    with ArcServer([PanelAccount(account=ACCOUNT, site="bv-test", key=key)]) as arc:
        config = dc09_site(tmp_path, broker.port, arc.port, key=key)

        async def body(gw: Any, factory: Any) -> None:
            await click(factory, 17)
            await in_thread(arc.wait_for, lambda arr: any(
                a.message and a.message.code == "PA" for a in arr))
            [pa] = arc.messages("PA")
            assert pa.zone == 1 and pa.encrypted == (key is not None)
            assert pa.text == "Khoa Cap cuu, Quay tiep don"
            alarm_id = next(iter(gw.alarm_engine.open_alarms())).id
            await until(lambda: gw.alarm_engine.get(alarm_id).state == "escalated",
                        what="escalated by the centre's ACK")
            reply = await gw.command_handler(
                alarm_id, json.dumps({"action": "resolve", "by": "Truong ca"}).encode(),
                "control")
            assert reply["ok"], reply
            await in_thread(arc.wait_for, lambda arr: any(
                a.message and a.message.code == "PR" for a in arr))

        run_gateway(config, body)
    [done] = [a for a in attempts(tmp_path) if a["status"] == "delivered"]
    assert done["answer"] == "ACK" and done["target"] == "arc"
    [pa, pr] = arc.messages()
    assert pa.seq == done["sequence"] and pr.seq != pa.seq and pr.zone == 1


def test_centre_down_is_retried_then_delivered_and_the_trouble_clears(
        tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv-test")], port=free_port())
    config = dc09_site(tmp_path, broker.port, arc.port)

    async def body(gw: Any, factory: Any) -> None:
        await click(factory, 17)
        await until(lambda: len(attempts(tmp_path)) >= 3, what="three refused attempts")
        assert gw.health.document()["dc09"]["trouble"] == ["dc09:arc"]
        await in_thread(arc.start)
        await in_thread(arc.wait_for, lambda arr: any(
            a.message and a.message.code == "PA" for a in arr))
        await until(lambda: any(a["status"] == "delivered" for a in attempts(tmp_path)),
                    what="delivered")

    try:
        run_gateway(config, body)
    finally:
        arc.stop()
    tries = attempts(tmp_path)
    assert {a["status"] for a in tries[:-1]} == {"retrying"}
    assert all("connection refused" in a["error"] for a in tries[:-1])
    assert tries[-1]["status"] == "delivered"
    assert len({a["sequence"] for a in tries}) == 1  # one message, resent under its number
    assert [m.code for m in arc.messages()] == ["PA"]
    troubles = [(e["type"], e["detail"]) for e in journal_events(tmp_path)
                if e["type"] in ("trouble", "trouble_cleared")]
    assert [t for t, _ in troubles] == ["trouble", "trouble_cleared"]
    assert troubles[0][1]["source"] == "dc09:arc"
    assert "connection refused" in troubles[0][1]["reason"]


def test_nak_with_a_time_stamp_is_resent_and_accepted(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    with ArcServer([PanelAccount(account=ACCOUNT, site="bv-test")]) as arc:
        arc.answer("nak")
        config = dc09_site(tmp_path, broker.port, arc.port)

        async def body(gw: Any, factory: Any) -> None:
            await click(factory, 17)
            await until(lambda: any(a["status"] == "delivered" for a in attempts(tmp_path)),
                        what="delivered after the NAK")

        run_gateway(config, body)
    answers = [a.answer for a in arc.arrivals()]
    assert answers == ["NAK", "ACK"]
    first, second = arc.messages()
    assert first.seq == second.seq and first.code == second.code == "PA"


def test_link_tests_arrive_at_the_interval_and_a_failure_is_a_trouble(
        tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    interval = 0.3
    with ArcServer([PanelAccount(account=ACCOUNT, site="bv-test")]) as arc:
        config = dc09_site(tmp_path, broker.port, arc.port, link_test_s=interval)

        async def body(gw: Any, factory: Any) -> None:
            nulls = await in_thread(arc.wait_for, lambda arr: len(
                [a for a in arr if a.message and a.message.kind == "NULL"]) >= 3)
            stamps = [a.at for a in nulls if a.message and a.message.kind == "NULL"]
            assert all(b - a >= interval * 0.9 for a, b in itertools.pairwise(stamps))
            arc.answer("duh", times=None)  # the centre stops accepting the link test
            await until(lambda: "dc09:arc" in gw.escalation.reporter.trouble,
                        what="trouble dc09:arc")
            assert "dc09:arc" in gw.health.document()["dc09"]["trouble"]
            arc.answer("ack")
            await until(lambda: "dc09:arc" not in gw.escalation.reporter.trouble,
                        what="trouble cleared")
            await gw.recorder.record(EventDraft(EventType.TEST_REPORT,
                                                detail={"periodic": True}))
            await in_thread(arc.wait_for, lambda arr: any(
                a.message and a.message.code == "RP" for a in arr))

        run_gateway(config, body)
    troubles = [e["detail"] for e in journal_events(tmp_path)
                if e["type"] in ("trouble", "trouble_cleared")
                and e["detail"].get("source") == "dc09:arc"]
    assert [t.get("reason") is not None for t in troubles] == [True, False]
    assert "DUH" in troubles[0]["reason"]
    # the centre heard neither its own link trouble nor its restore as an event
    assert not [m for m in arc.messages() if m.code in ("YS", "YK")]


def test_a_replay_after_a_restart_resends_under_the_same_number_and_a_drill_is_rx(
        tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    arc = ArcServer([PanelAccount(account=ACCOUNT, site="bv-test")], port=free_port())
    config = dc09_site(tmp_path, broker.port, arc.port)

    async def down(gw: Any, factory: Any) -> None:
        await click(factory, 17)
        await until(lambda: len(attempts(tmp_path)) >= 2, what="two refused attempts")

    async def back(gw: Any, factory: Any) -> None:
        await in_thread(arc.start)
        await until(lambda: any(a["status"] == "delivered" for a in attempts(tmp_path)),
                    what="delivered after the restart")
        [alarm] = gw.alarm_engine.open_alarms()
        assert alarm.state == "escalated"
        answer = await gw.control.handle(b'{"cmd": "drill", "device": "exam-3"}')
        assert answer.get("drill") is True, answer
        await in_thread(arc.wait_for, lambda arr: any(
            a.message and a.message.code == "RX" for a in arr))

    run_gateway(config, down)  # stopped mid-retry: the plan is still owed
    before = {a["sequence"] for a in attempts(tmp_path)}
    [esc_id] = {a["escalation_id"] for a in attempts(tmp_path)}
    try:
        run_gateway(config, back)
    finally:
        arc.stop()
    after = [a for a in attempts(tmp_path) if a["escalation_id"] == esc_id]
    assert len(before) == 1 and {a["sequence"] for a in after} == before
    assert after[-1]["status"] == "delivered"
    [pa, rx] = arc.messages()
    assert pa.code == "PA" and pa.seq in before
    assert rx.zone == 2 and rx.text == "Khoa Kham benh, Phong kham 3"  # a drill: RX
