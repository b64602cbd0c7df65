"""An officer's steps at a police receiver, applied by the engine (SPEC §6), and the plan
that escalates to several receivers, each its own delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarms.alarm_helpers import Harness, detail, site, site_dict
from gateway.alarms.plan import targets
from gateway.config.checks import cross_checks
from gateway.core.events import EventDraft, EventType


def ack(alarm_id: str, state: str, by: str = "Trung úy Hùng", note: str = "") -> EventDraft:
    return EventDraft(EventType.POLICE_ACK, alarm_id=alarm_id, detail={
        "receiver": "ca-phuong", "cursor": 7, "escalation_id": "e1", "alarm_id": alarm_id,
        "code": "0427", "state": state, "by": by, "ts": "2026-01-01T00:00:00.000Z",
        "note": note})


def receivers(tmp_path: Path) -> list[dict[str, Any]]:
    return [{"id": "ca-phuong", "url": "http://127.0.0.1:9/v1/alarms",
             "secret_file": str(tmp_path / "hotline.secret")},
            {"id": "ca-quan", "url": "https://ca-quan.example/police/v1/alarms",
             "drill_url": "https://ca-quan.example/drill/v1/alarms",
             "secret_file": str(tmp_path / "hotline.secret")}]


def test_received_on_scene_closed_by_the_officer(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy={"default": "immediate"}))
    alarm = h.alarm(h.record(EventDraft(EventType.PRESS, device="er-1"))[0].alarm_id)
    h.record(ack(alarm.id, "police_acknowledged"))
    assert alarm.state == "police_acknowledged" and h.leds[-1] == ("er-1", 4)
    h.record(ack(alarm.id, "on_scene"))
    h.record(ack(alarm.id, "closed", note="Đã xử lý"))
    assert alarm.state == "police_acknowledged"  # the hospital resolves, not the police
    police = [(x["state"], x["by"], x.get("action")) for x in alarm.history
              if x["by"].startswith("police:")]
    assert police == [("police_acknowledged", "police:Trung úy Hùng", None),
                      ("on_scene", "police:Trung úy Hùng", "police"),
                      ("closed", "police:Trung úy Hùng", "police")]
    restarted = h.restart()
    assert [x["state"] for x in restarted.alarm(alarm.id).history][-2:] == ["on_scene", "closed"]


def test_an_ack_for_no_alarm_of_ours_or_a_resolved_one_is_ignored_with_a_reason(
        tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy={"default": "immediate"}))
    out = h.record(ack("not-ours", "police_acknowledged"))
    assert detail(out[0])["ignored"] == "unknown alarm" and out[0].alarm_id is None
    alarm = h.alarm(h.record(EventDraft(EventType.PRESS, device="er-1"))[0].alarm_id)
    h.record(h.engine.command_draft(alarm.id, "resolve", "Bảo vệ", "", "mqtt"))
    out = h.record(ack(alarm.id, "police_acknowledged"))
    assert "already resolved" in detail(out[0])["ignored"] and alarm.state == "resolved"


def test_every_receiver_is_a_delivery_and_drills_go_to_drill_urls(tmp_path: Path) -> None:
    config = site(tmp_path, escalation={
        "http": {"url": "http://127.0.0.1:9/alarm",
                 "secret_file": str(tmp_path / "hotline.secret")},
        "receivers": receivers(tmp_path)})
    assert [t for c, t in targets(config, drill=False) if c == "http"] == [
        "http://127.0.0.1:9/alarm", "http://127.0.0.1:9/v1/alarms",
        "https://ca-quan.example/police/v1/alarms"]
    assert [t for c, t in targets(config, drill=True) if c == "http"][-1] == \
        "https://ca-quan.example/drill/v1/alarms"


def test_check_config_names_a_receiver_url_duplicate_id_and_url(tmp_path: Path) -> None:
    twice = receivers(tmp_path)
    twice.append({**twice[0], "url": "http://127.0.0.1:9/alarm"})
    twice.append({**twice[1], "id": "ca-khac"})
    raw = site_dict(tmp_path, escalation={"receivers": twice})
    problems = dict(cross_checks(raw, tmp_path))
    assert "ends in /v1/alarms" in problems["escalation.receivers[2].url"]
    assert "already used" in problems["escalation.receivers[2].id"]
    assert "the same URL as escalation.receivers[1]" in problems["escalation.receivers[3].url"]
