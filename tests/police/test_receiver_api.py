"""The receiver's gateway API over real HTTP on 127.0.0.1 (SPEC §6): alarms in, refusals,
idempotency across a restart, the ack long-poll and its cursor."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from police.police_helpers import (
    OFFICER_SHOWN,
    SITES,
    Officer,
    ReceiverThread,
    escalation,
    journal_rows,
    page,
    poll,
    post,
    ref_number,
    wait_until,
    write_config,
)

SECRET_A, SECRET_B = SITES["bv-a"][1], SITES["bv-b"][1]
Start = Callable[..., ReceiverThread]


def _db(tmp_path: Path) -> Path:
    return tmp_path / "recv" / "receiver.sqlite3"


def test_alarm_is_stored_once_and_answered_with_a_ref(receiver: Start, tmp_path: Path) -> None:
    rx = receiver()
    req = escalation("bv-a", code="0427")
    first = post(rx.base, req, SECRET_A)
    assert first.status_code == 200, first.text
    assert first.json()["received"] is True
    again = post(rx.base, req, SECRET_A)
    assert again.status_code == 200 and again.json()["ref"] == first.json()["ref"]
    received = journal_rows(_db(tmp_path), "alarm_received")
    assert [r["key"] for r in received] == [req.escalation_id]
    assert received[0]["body"]["site"]["id"] == "bv-a"
    assert len(journal_rows(_db(tmp_path), "alarm_duplicate")) == 1
    record = rx.rx.desk.get(ref_number(first.json()["ref"]))  # type: ignore[union-attr]
    assert record is not None and record.alarm.code == "0427" and record.state == "new"


def test_refusals_are_4xx_with_a_reason_and_journaled(receiver: Start, tmp_path: Path) -> None:
    rx = receiver()
    req = escalation("bv-a")
    cases = {
        "forged": post(rx.base, req, b"not-the-secret-of-bv-a-at-all!!"),
        "stale": post(rx.base, req, SECRET_A, ts=int(time.time()) - 301),
        "wrong site": post(rx.base, escalation("bv-b"), SECRET_A),
        "unknown site": post(rx.base, escalation("bv-x"), SECRET_A),
        "bad json": post(rx.base, req, SECRET_A, body=b"{not json"),
        "key mismatch": post(rx.base, req, SECRET_A, headers={"Idempotency-Key": "other"}),
        "no signature": post(rx.base, req, SECRET_A, headers={"X-Alarm-Signature": ""}),
    }
    expected = {"forged": 401, "stale": 401, "wrong site": 401, "unknown site": 403,
                "bad json": 400, "key mismatch": 400, "no signature": 401}
    for name, resp in cases.items():
        assert resp.status_code == expected[name], (name, resp.text)
        reason = resp.json()["error"]
        assert reason and "\n" not in reason, name
    assert "skew" in cases["stale"].json()["error"]
    refused = journal_rows(_db(tmp_path), "refused")
    assert len(refused) == len(cases)
    assert {r["status"] for r in refused} == {400, 401, 403}
    assert journal_rows(_db(tmp_path), "alarm_received") == []
    assert rx.rx.desk.records() == []  # type: ignore[union-attr]


def test_a_duplicate_after_a_restart_is_still_one_alarm(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    req = escalation("bv-b")
    rx = ReceiverThread(config).start()
    try:
        ref = post(rx.base, req, SECRET_B).json()["ref"]
    finally:
        rx.stop()
    rx = ReceiverThread(config).start()
    try:
        again = post(rx.base, req, SECRET_B)
        assert again.status_code == 200 and again.json()["ref"] == ref
        assert len(rx.rx.desk.records()) == 1  # type: ignore[union-attr]
    finally:
        rx.stop()
    assert len(journal_rows(_db(tmp_path), "alarm_received")) == 1


def test_concurrent_retries_of_one_alarm_store_it_once(receiver: Start, tmp_path: Path) -> None:
    rx = receiver()
    req = escalation("bv-a")
    refs: list[str] = []
    threads = [threading.Thread(target=lambda: refs.append(post(rx.base, req, SECRET_A)
                                                            .json()["ref"])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(refs) == 8 and len(set(refs)) == 1
    assert len(journal_rows(_db(tmp_path), "alarm_received")) == 1


def test_officer_steps_reach_only_their_site_through_the_long_poll(receiver: Start) -> None:
    rx = receiver()
    a = post(rx.base, escalation("bv-a", code="1111"), SECRET_A).json()["ref"]
    post(rx.base, escalation("bv-b", code="2222"), SECRET_B)
    officer = Officer.login(rx.screen)
    assert page(poll(rx.base, "bv-a", SECRET_A)).acks == ()
    waiting: list[float] = []

    def long_poll() -> None:
        started = time.monotonic()
        got = page(poll(rx.base, "bv-a", SECRET_A, after=0, wait=5))
        waiting.append(time.monotonic() - started)
        assert [x.code for x in got.acks] == ["1111"]

    t = threading.Thread(target=long_poll)
    t.start()
    assert officer.act(ref_number(a), "take").status_code == 200
    t.join(10)
    assert waiting and waiting[0] < 5  # answered by the news, not by the time-out
    first = page(poll(rx.base, "bv-a", SECRET_A))
    ack = first.acks[0]
    assert (ack.state, ack.by, ack.code) == ("police_acknowledged", OFFICER_SHOWN, "1111")
    assert page(poll(rx.base, "bv-b", SECRET_B)).acks == ()
    officer.act(ref_number(a), "on_scene")
    officer.act(ref_number(a), "close", "Đã xử lý, không có thiệt hại")
    rest = page(poll(rx.base, "bv-a", SECRET_A, after=first.cursor))
    assert [x.state for x in rest.acks] == ["on_scene", "closed"]
    assert rest.acks[1].note == "Đã xử lý, không có thiệt hại"
    assert page(poll(rx.base, "bv-a", SECRET_A, after=rest.cursor)).acks == ()


def test_a_poll_must_be_signed_by_its_own_site(receiver: Start, tmp_path: Path) -> None:
    rx = receiver()
    assert poll(rx.base, "bv-b", SECRET_A).status_code == 401
    assert poll(rx.base, "bv-a", SECRET_A, ts=int(time.time()) - 1000).status_code == 401
    assert poll(rx.base, "bv-x", SECRET_A).status_code == 403
    assert len(journal_rows(_db(tmp_path), "refused")) == 3


def test_officer_steps_follow_the_order_and_closing_needs_a_note(receiver: Start) -> None:
    rx = receiver()
    ref = ref_number(post(rx.base, escalation("bv-a"), SECRET_A).json()["ref"])
    officer = Officer.login(rx.screen)
    assert officer.act(ref, "on_scene").status_code == 409
    assert officer.act(ref, "take").status_code == 200
    assert officer.act(ref, "take").status_code == 409
    assert officer.act(ref, "close").status_code == 400
    assert officer.act(ref, "close", "xong").json()["alarm"]["state"] == "closed"
    assert json.loads(officer.session.get(f"{rx.screen}/api/session").text)["name"] == "hung"


def test_a_silent_site_goes_lost_and_is_restored_when_it_speaks(receiver: Start,
                                                                 tmp_path: Path) -> None:
    rx = receiver(supervision_s=2, max_wait_s=1)
    page(poll(rx.base, "bv-a", SECRET_A))
    wait_until(lambda: {r["site"] for r in journal_rows(_db(tmp_path), "link_lost")}
               >= {"bv-a", "bv-b"}, timeout=8)
    assert rx.rx.links.state("bv-a") == "lost"  # type: ignore[union-attr]
    page(poll(rx.base, "bv-a", SECRET_A))
    wait_until(lambda: journal_rows(_db(tmp_path), "link_restored"), timeout=5)
    assert [r["site"] for r in journal_rows(_db(tmp_path), "link_restored")] == ["bv-a"]
    assert rx.rx.links.state("bv-b") == "lost"  # type: ignore[union-attr]


def test_the_screen_stream_starts_with_a_snapshot_of_every_site(receiver: Start) -> None:
    rx = receiver()
    post(rx.base, escalation("bv-b", code="3333"), SECRET_B)
    officer = Officer.login(rx.screen)
    with officer.session.get(f"{rx.screen}/api/stream", stream=True, timeout=10) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines(decode_unicode=True)
        data = next(line for line in lines if line.startswith("data: {"))
    snapshot = json.loads(data[6:])
    assert [a["code"] for a in snapshot["alarms"]] == ["3333"]
    assert snapshot["alarms"][0]["site_name"] == "Bệnh viện Nhi B"
    assert {s["id"] for s in snapshot["sites"]} == {"bv-a", "bv-b"}
    assert snapshot["user"] == OFFICER_SHOWN
    assert requests.get(f"{rx.screen}/api/stream", timeout=10).status_code == 401
