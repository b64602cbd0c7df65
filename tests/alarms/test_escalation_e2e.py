"""Press → alarm → police, end to end: real mosquitto, MockFactory buttons pressed from
another thread, the simulated hotline on 127.0.0.1 and the simulated modem on a pty."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mqtt_helpers import MqttCollector

from alarms.alarm_helpers import (
    SECRET,
    alarm_site,
    in_thread,
    journal_events,
    run_gateway,
    until,
)
from gateway.escalation.wire import verify_signature
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator

BASE = "alarmgw/bv-test"


def alarm_docs(collector: MqttCollector, alarm_id: str) -> list[dict[str, Any]]:
    return [m.json() for m in collector.on(f"/alarm/{alarm_id}") if m.payload]


async def wait_mqtt(collector: MqttCollector, predicate: Any, timeout: float = 10) -> Any:
    return await in_thread(collector.wait_for, predicate, timeout)


async def press(factory: Any, pin: int) -> None:
    """A click (press and release, so no hold follows), from another thread as lgpio's."""
    mock = factory.pin(pin)

    def click() -> None:
        mock.drive_low()
        mock.drive_high()

    await in_thread(click)


def attempts(tmp_path: Path, channel: str | None = None) -> list[dict[str, Any]]:
    out = [e["detail"] for e in journal_events(tmp_path, "escalation_attempt")]
    return [d for d in out if channel is None or d["channel"] == channel]


def test_immediate_escalation_signed_on_hotline_and_sms(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                                                        hotline: HotlineServer,
                                                        modem: ModemSimulator) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url, modem_port=modem.port)
    seen: dict[str, Any] = {}

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        await until(lambda: len(modem.sent_messages()) == 2, what="two SMS")
        await wait_mqtt(collector, lambda ms: [
            m for m in collector.on("/alarm/" + collector.events("press")[0]["alarm_id"])
            if len(m.json()["escalations"]) == 3
            and all(e["status"] == "delivered" for e in m.json()["escalations"])])
        doc = await wait_mqtt(collector, lambda ms: [
            m.json() for m in collector.on("/alarm/" + seen.setdefault(
                "id", collector.events("press")[0]["alarm_id"] if collector.events("press")
                else "?")) if m.json()["state"] == "escalated"])
        seen["doc"] = doc[-1]
        await until(lambda: gw.gpio.led("er-desk-1") == 3, what="LED 3")

    run_gateway(config, body)
    [request] = hotline.requests()
    assert request.signature_ok and request.problem is None
    assert verify_signature(SECRET, request.headers["x-alarm-timestamp"],
                            request.headers["x-alarm-signature"], request.raw,
                            float(request.headers["x-alarm-timestamp"])) is None
    sent = request.body
    assert sent is not None
    doc = seen["doc"]
    press_event = collector.events("press")[0]
    assert press_event["alarm_id"] == doc["id"] == sent["alarm_id"]
    doc = [m.json() for m in collector.on(f"/alarm/{doc['id']}")][-1]
    http_entry = next(e for e in doc["escalations"] if e["channel"] == "http")
    assert request.idempotency_key == sent["escalation_id"] == http_entry["escalation_id"]
    assert sent["code"] == doc["code"] and sent["type"] == "panic" and sent["drill"] is False
    assert sent["site"] == {"id": "bv-test", "name": "Bệnh viện Thử nghiệm",
                            "address": "1 Đường Thử, Hà Nội", "phone": "+84240000000"}
    assert sent["ward"] == {"id": "cap-cuu", "name": "Khoa Cấp cứu"}
    assert sent["room"] == "Quầy tiếp đón" and sent["device"] == "er-desk-1"
    assert sent["acknowledged_locally"] is False and sent["press_count"] == 1
    assert f"Mã {doc['code']}" in sent["message"] and "Khoa Cấp cứu" in sent["message"]
    assert f"Code {doc['code']}" in sent["message_en"]
    assert http_entry["status"] == "delivered" and doc["state"] == "escalated"
    late = MqttCollector(broker.port)  # a late subscriber gets the retained document
    late.start(f"{BASE}/alarm/#")
    try:
        [kept] = late.wait_for(lambda ms: ms, 10)
    finally:
        late.stop()
    assert kept.retain and kept.qos == 1 and kept.json()["state"] == "escalated"
    states = [e["detail"]["state"] for e in collector.events("alarm_state")]
    assert states[:1] == ["raised"] and "escalated" in states
    assert [a["status"] for a in attempts(tmp_path)] == ["delivered"] * 3
    sms = sorted(modem.sent_messages())
    assert [m.number for m in sms] == ["+84901111111", "+84902222222"]
    code = doc["code"]
    for m in sms:  # the text as the police phone shows it: one part, HH:MM local time
        assert re.fullmatch(rf"KHẨN CẤP BV Thử nghiệm, Cấp cứu, Quầy tiếp đón, "
                            rf"\d\d:\d\d\. Đáp: OK {code}", m.text), m.text
        assert m.parts == 1
    final = [m.json() for m in collector.on(f"/alarm/{doc['id']}")][-1]
    assert sorted(e["channel"] for e in final["escalations"]) == ["http", "sms", "sms"]
    assert all(e["status"] == "delivered" and e["attempts"] == 1 for e in final["escalations"])


def test_security_ack_over_mqtt_cancels_the_police_timer(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                                                         hotline: HotlineServer) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url,
                        policy='default = "unacknowledged_after"\nafter_s = 2')

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await press(factory, 27)
        events = await wait_mqtt(collector, lambda ms: len(collector.events("press")) == 2
                                 and collector.events("press"))
        by_device = {e["device"]: e["alarm_id"] for e in events}
        payload = json.dumps({"action": "ack", "by": "Bảo vệ Hùng", "note": "đang tới"})
        collector.client.publish(f"{BASE}/alarm/{by_device['er-desk-1']}/set", payload, qos=1)
        await wait_mqtt(collector, lambda ms: [e for e in collector.events("alarm_state")
                                               if e["detail"]["state"] == "acknowledged"])
        # the other alarm escalates when its timer runs out; the acknowledged one never
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        assert gw.gpio.led("er-desk-1") == 2
        await wait_mqtt(collector, lambda ms: [e for e in collector.events("alarm_state")
                                               if e["detail"]["state"] == "escalated"])

    run_gateway(config, body)
    [delivery] = hotline.deliveries()
    assert delivery.body is not None and delivery.body["device"] == "exam-3"
    ack = next(e for e in collector.events("alarm_state")
               if e["detail"]["state"] == "acknowledged")
    assert ack["detail"]["by"] == "Bảo vệ Hùng" and ack["detail"]["origin"] == "mqtt"
    decided = next(e for e in journal_events(tmp_path, "alarm_state")
                   if "escalation" in e.get("detail", {}))
    raised = next(e for e in journal_events(tmp_path, "press") if e["device"] == "exam-3")
    assert decided["_ts"] >= raised["_ts"] + 2  # not before the security desk's window


def test_escalate_command_and_rejected_commands_over_mqtt(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                                                          hotline: HotlineServer) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url,
                        policy='default = "never"')

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        [event] = await wait_mqtt(collector, lambda ms: collector.events("press"))
        topic = f"{BASE}/alarm/{event['alarm_id']}/set"
        collector.client.publish(topic, b"\xff{bad", qos=1)
        collector.client.publish(f"{BASE}/alarm/nope/set", b'{"action":"ack","by":"x"}', qos=1)
        collector.client.publish(topic, json.dumps({"action": "escalate", "by": "Trưởng ca"}),
                                 qos=1)
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        collector.client.publish(topic, json.dumps({"action": "resolve", "by": "Trưởng ca"}),
                                 qos=1)
        collector.client.publish(topic, json.dumps({"action": "ack", "by": "late"}), qos=1)
        await wait_mqtt(collector, lambda ms: len(collector.events("rejected_command")) == 3)
        await until(lambda: gw.gpio.led("er-desk-1") == 0, what="LED off")

    run_gateway(config, body)
    reasons = [e["detail"]["reason"] for e in collector.events("rejected_command")]
    assert "not UTF-8" in reasons[0] and "unknown alarm" in reasons[1]
    assert "resolved" in reasons[2]
    assert hotline.deliveries()[0].body["acknowledged_locally"] is False  # type: ignore[index]
    state = [m.json() for m in collector.on("/device/er-desk-1/state")][-1]
    assert state["state"] == "normal"


def test_hotline_500_three_times_then_200_is_one_delivery(tmp_path: Path, broker,  # type: ignore[no-untyped-def]
                                                         hotline: HotlineServer) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url)
    hotline.fail(500, times=3)

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 15)
        await until(lambda: [a for a in attempts(tmp_path) if a["status"] == "delivered"])

    run_gateway(config, body)
    requests = hotline.requests()
    assert [r.answer for r in requests] == [500, 500, 500, 200]
    assert len({r.idempotency_key for r in requests}) == 1 and len(hotline.deliveries()) == 1
    assert len({r.headers["x-alarm-signature"] for r in requests}) >= 1
    journaled = attempts(tmp_path, "http")
    assert [(a["attempt"], a["status"], a["will_retry"]) for a in journaled] == [
        (1, "retrying", True), (2, "retrying", True), (3, "retrying", True),
        (4, "delivered", False)]
    assert [a["http_status"] for a in journaled] == [500, 500, 500, 200]


def test_restart_keeps_the_running_timer_deadline(tmp_path: Path, broker,  # type: ignore[no-untyped-def]
                                                  hotline: HotlineServer) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url,
                        policy='default = "unacknowledged_after"\nafter_s = 3')
    first: dict[str, Any] = {}

    async def before(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        alarm = await until(lambda: gw.alarm_engine.open_alarms())
        first["deadline"] = gw.alarm_engine.next_deadline()
        first["raised_at"] = alarm[0].raised_at

    async def after(gw: Any, factory: Any) -> None:
        assert gw.alarm_engine.next_deadline() == first["deadline"]
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)

    run_gateway(config, before)
    assert hotline.requests() == []
    run_gateway(config, after)
    assert first["deadline"] == first["raised_at"] + 3
    decided = [e for e in journal_events(tmp_path, "alarm_state")
               if "escalation" in e.get("detail", {})]
    assert len(decided) == 1 and decided[0]["detail"]["escalation"]["reason"] == "timer"
    assert decided[0]["_ts"] >= first["deadline"]
    assert len(journal_events(tmp_path, "gateway_start")) == 2


def test_drill_end_to_end(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                          hotline: HotlineServer, modem: ModemSimulator) -> None:
    drill_url = hotline.url.replace("/alarm", "/drill")
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url, modem_port=modem.port,
                        http=f'drill_url = "{drill_url}"', policy='default = "never"',
                        sms='drill_numbers = ["+84903333333"]')
    from gateway.alarms.drill import request_drill
    from gateway.config.schema import load_config

    codes: dict[str, int] = {}

    async def body(gw: Any, factory: Any) -> None:
        cfg = load_config(config)
        codes["unknown"] = await in_thread(request_drill, cfg, "no-such-device")
        codes["ok"] = await in_thread(request_drill, cfg, "exam-3")
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        await until(lambda: modem.sent_messages(), what="drill SMS")
        await wait_mqtt(collector, lambda ms: [e for e in collector.events("alarm_state")
                                               if e["detail"]["state"] == "escalated"])

    run_gateway(config, body)
    assert codes == {"unknown": 2, "ok": 0}
    [sms] = modem.sent_messages()
    assert sms.number == "+84903333333" and sms.text.startswith("[DIỄN TẬP] ")
    [delivery] = hotline.deliveries()
    assert delivery.path == "/drill" and delivery.body["drill"] is True  # type: ignore[index]
    assert delivery.body["message"].startswith("[DIỄN TẬP]")  # type: ignore[index]
    events = [e for e in collector.events() if e.get("alarm_id")]
    assert events and all(e["drill"] for e in events)
    from gateway.config.schema import load_config as load

    assert request_drill(load(config), None) == 1  # the gateway has stopped: none answers


def test_hotline_400_falls_back_to_sms_and_raises_trouble(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                                                          hotline: HotlineServer,
                                                          modem: ModemSimulator) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url, modem_port=modem.port,
                        policy='default = "immediate"\ndelivery = "fallback"')
    hotline.reject(400)

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await until(lambda: len(modem.sent_messages()) == 2, what="fallback SMS")
        await wait_mqtt(collector, lambda ms: collector.events("trouble"))
        await wait_mqtt(collector, lambda ms: [e for e in collector.events("alarm_state")
                                               if e["detail"]["state"] == "escalated"])

    run_gateway(config, body)
    assert [r.answer for r in hotline.requests()] == [400]
    [trouble] = collector.events("trouble")
    assert trouble["detail"]["source"] == "hotline" and "400" in trouble["detail"]["reason"]
    statuses = [(a["channel"], a["status"]) for a in attempts(tmp_path)]
    assert statuses[0] == ("http", "failed")
    assert statuses.count(("sms", "activated")) == 2 and statuses.count(("sms", "delivered")) == 2
    escalated = next(e for e in collector.events("alarm_state")
                     if e["detail"]["state"] == "escalated")
    assert escalated["detail"]["by"].startswith("sms:")


def test_modem_cms_error_then_success(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                                      modem: ModemSimulator) -> None:
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port)
    modem.fail_sends(1, 500)

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await until(lambda: len(modem.sent_messages()) == 2, timeout=15, what="SMS after retry")
        await wait_mqtt(collector, lambda ms: collector.events("trouble_cleared"))

    run_gateway(config, body)
    sms = attempts(tmp_path, "sms")
    failed = [a for a in sms if a["status"] == "error"]
    assert len(failed) == 1 and failed[0]["will_retry"] and "ERROR" in failed[0]["error"]
    retried = [a for a in sms if a["target"] == failed[0]["target"]]
    assert [(a["attempt"], a["status"]) for a in retried] == [(1, "error"), (2, "delivered")]
    assert collector.events("trouble")[0]["detail"]["source"] == "modem"
    resent = next(m for m in modem.sent_messages() if m.number.endswith(failed[0]["target"][-9:]))
    # 67 characters: " (2)" would need a second part, so the resend keeps the one-part text
    assert resent.parts == 1 and resent.text.startswith("KHẨN CẤP BV Thử nghiệm")


def test_police_reply_acknowledges_by_code(tmp_path: Path, broker, collector,  # type: ignore[no-untyped-def]
                                           modem: ModemSimulator) -> None:
    config = alarm_site(tmp_path, broker.port, modem_port=modem.port)

    async def body(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await press(factory, 27)
        await until(lambda: len(modem.sent_messages()) == 4, what="SMS for both alarms")
        alarms = {a.device: a for a in gw.alarm_engine.open_alarms()}
        await until(lambda: all(a.state == "escalated" for a in alarms.values()))
        er, exam = alarms["er-desk-1"], alarms["exam-3"]
        modem.deliver_sms("+84987654321", f"OK {er.code}")  # not a police number
        await wait_mqtt(collector, lambda ms: collector.events("police_reply"))
        modem.deliver_sms("+84901111111", f"Ôk,  {er.code}. Đang tới")
        modem.deliver_sms("0902222222", f"ok {exam.code}")
        await until(lambda: er.state == exam.state == "police_acknowledged", what="police ack")
        await until(lambda: gw.gpio.led("er-desk-1") == 4 and gw.gpio.led("exam-3") == 4)

    run_gateway(config, body)
    replies = collector.wait_for(lambda ms: len(collector.events("police_reply")) == 3
                                 and collector.events("police_reply"))
    ignored, first, second = replies
    assert "not a configured police number" in ignored["detail"]["ignored"]
    assert ignored["alarm_id"] is None
    assert first["alarm_id"] and "ignored" not in first["detail"]
    assert second["detail"]["from"] == "+84902222222" and second["alarm_id"]
    acks = [e for e in collector.events("alarm_state")
            if e["detail"]["state"] == "police_acknowledged"]
    assert sorted(e["detail"]["by"] for e in acks) == ["police:+84901111111",
                                                        "police:+84902222222"]


MASS_DEVICES = "".join(
    f'\n[[devices]]\nid = "b{pin:02d}"\nward = "cap-cuu"\nroom = "P{pin}"\npin = {pin}\n'
    f"bounce_ms = 5\nhold_s = 30\n" for pin in range(46))


def test_button_burst_is_one_mass_alarm_with_one_sms_per_number(  # type: ignore[no-untyped-def]
        tmp_path: Path, broker, hotline: HotlineServer, modem: ModemSimulator) -> None:
    """Every GPIO of a Compute Module (46) pressed within 2 s."""
    from gpiozero.pins.mock import MockFactory

    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url, modem_port=modem.port,
                        devices=MASS_DEVICES, min_interval_s=60,
                        policy='default = "immediate"\n[policy.mass_alarm]\ncount = 3\n'
                               'window_s = 10')

    async def body(gw: Any, factory: Any) -> None:
        def burst() -> None:
            for pin in range(46):
                factory.pin(pin).drive_low()
                factory.pin(pin).drive_high()

        await in_thread(burst)
        engine = gw.alarm_engine
        await until(lambda: len(engine.open_alarms()) == 46, what="46 alarms")
        await until(lambda: all(a.state == "escalated" for a in engine.open_alarms()),
                    timeout=15, what="all escalated")
        await until(lambda: len(modem.sent_messages()) == 2, what="first SMS")
        await until(lambda: [a for a in attempts(tmp_path, "sms")
                             if a["status"] == "superseded"], what="superseded SMS")

    run_gateway(config, body, MockFactory(revision="a020a0"))
    per_number: dict[str, int] = {}
    for m in modem.sent_messages():
        per_number[m.number] = per_number.get(m.number, 0) + 1
    assert per_number == {"+84901111111": 1, "+84902222222": 1}
    plans = [e["detail"]["escalation"] for e in journal_events(tmp_path, "alarm_state")
             if "escalation" in e.get("detail", {})]
    assert [p["mass"] for p in plans] == [False, False, True]
    messages = [str((r.body or {}).get("message")) for r in hotline.deliveries()]
    assert len(messages) == 3 and sum("HÀNG LOẠT (3 báo động)" in m for m in messages) == 1
    sms = attempts(tmp_path, "sms")
    assert {a["status"] for a in sms} <= {"delivered", "rate_limited", "superseded"}


def test_restart_while_hotline_down_redelivers_under_the_same_id(  # type: ignore[no-untyped-def]
        tmp_path: Path, broker, hotline: HotlineServer) -> None:
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url)
    hotline.fail(503, times=None)

    async def before(gw: Any, factory: Any) -> None:
        await press(factory, 17)
        await in_thread(hotline.wait_for, lambda h: len(h.requests()) >= 2, 10)
        await until(lambda: len(attempts(tmp_path, "http")) >= 2, what="two attempts journaled")

    async def after(gw: Any, factory: Any) -> None:
        await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        await until(lambda: all(a.state == "escalated" for a in gw.alarm_engine.open_alarms()))

    run_gateway(config, before)
    hotline.clear_faults()
    run_gateway(config, after)
    keys = {r.idempotency_key for r in hotline.requests()}
    assert len(keys) == 1 and len(hotline.deliveries()) == 1
    decided = [e for e in journal_events(tmp_path, "alarm_state")
               if "escalation" in e.get("detail", {})]
    assert len(decided) == 1  # replayed, not decided again
    http = attempts(tmp_path, "http")
    assert {a["escalation_id"] for a in http} == keys
    assert [a["status"] for a in http][-1] == "delivered" and len(http) >= 3


def test_fallback_sms_when_http_attempts_run_out_before_the_deadline(  # type: ignore[no-untyped-def]
        tmp_path: Path, broker, hotline: HotlineServer, modem: ModemSimulator) -> None:
    """Each round of HTTP retries ends (max_attempts) well before fallback_after_s: the
    SMS still goes at the deadline, HTTP keeps trying, and the recovered hotline gets
    the escalation once, under its one id."""
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url, modem_port=modem.port,
                        http="max_attempts = 2",
                        policy='default = "immediate"\ndelivery = "fallback"\n'
                               "fallback_after_s = 2")
    hotline.fail(500, times=None)

    async def body(gw: Any, factory: Any) -> None:
        gw.escalation.http.pause_s = 0.3  # seconds between rounds (30 s in service)
        await press(factory, 17)
        await until(lambda: len(modem.sent_messages()) == 2, what="fallback SMS")
        after_sms = len(hotline.requests())
        assert await in_thread(hotline.wait_for, lambda h: len(h.requests()) > after_sms, 10)
        hotline.clear_faults()
        assert await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        await until(lambda: [a for a in attempts(tmp_path, "http")
                             if a["status"] == "delivered"], what="HTTP delivered")

    run_gateway(config, body)
    requests = hotline.requests()
    assert len({r.idempotency_key for r in requests}) == 1 and len(hotline.deliveries()) == 1
    assert [r.answer for r in requests][-1] == 200
    assert sum(r.accepted for r in requests) == 1
    journaled = attempts(tmp_path)
    activated = [i for i, a in enumerate(journaled) if a["status"] == "activated"]
    assert len(activated) == 2
    assert all(journaled[i]["note"] == "HTTP late" for i in activated)
    http = [(i, a) for i, a in enumerate(journaled) if a["channel"] == "http"]
    before = [a for i, a in http if i < activated[0]]
    assert len(before) > 2  # more than one round of max_attempts before the deadline
    assert [a for i, a in http if i > activated[0]]  # and HTTP went on after it
    assert {a["escalation_id"] for _, a in http} == {requests[0].idempotency_key}
    assert [a["status"] for _, a in http][-1] == "delivered"
    assert [a["attempt"] for _, a in http] == list(range(1, len(http) + 1))
    sms = [a for a in journaled if a["channel"] == "sms" and a["status"] == "delivered"]
    assert len(sms) == 2
