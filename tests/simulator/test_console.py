"""The console, driven through its own input stream against a running simulated site."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_helpers import Broker
from sim_helpers import sim_config
from waiting import poll_until as until

from simulator.console import SimConsole
from simulator.rig import SimulatedSite

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def site(tmp_path: Path, broker: Broker) -> Iterator[SimulatedSite]:
    s = SimulatedSite(sim_config(tmp_path), mqtt_url=f"mqtt://127.0.0.1:{broker.port}")
    s.start()
    yield s
    s.stop()


def session(site: SimulatedSite, *lines: str) -> str:
    """Feed ``lines`` to a console (then end of input) and return everything it wrote."""
    out = io.StringIO()
    SimConsole(site, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out).cmdloop()
    return out.getvalue()



def test_console_drives_the_site(site: SimulatedSite) -> None:
    first = session(site, "press er-desk-1")
    # the emergency desk goes to the police at once: let its request be answered 200
    # before the hotline starts failing (a loaded machine could otherwise reorder them)
    until(lambda: any(m.channel == "http" and m.device == "er-desk-1" and m.answer == "200"
                      for m in site.police()))
    out = first + session(site, "hotline 500", "press er-bed-11", "nonsense",
                  "press nope", "drain exam-bed-21 2300", "reboot exam-bed-21", "tamper er-duress-1",
                  "noisy on", "noisy off", "modem error 500 1", "silence er-desk-1")
    assert "pressed er-desk-1" in out and "pressed er-bed-11" in out
    assert "hotline answers 500 to every request" in out
    assert "error: unknown command 'nonsense'" in out
    assert "error: unknown device 'nope'" in out
    assert "exam-bed-21 battery at 2300 mV" in out and "exam-bed-21 rebooted" in out
    assert "er-duress-1 enclosure opened" in out
    assert "serial line noisy" in out and "serial line clean" in out
    assert "+CMS ERROR: 500" in out
    assert "error: silence: er-desk-1 is a GPIO button, not a serial node" in out
    assert "stopping the simulated site" in out  # end of input quits

    obs = site.observer
    assert obs is not None
    until(lambda: any(m.channel == "http" and m.device == "er-desk-1" for m in site.police()))
    until(lambda: (obs.device_state("er-duress-1") or {}).get("state") == "trouble")
    until(lambda: any(e["type"] == "low_battery" for e in obs.events()))
    until(lambda: any(m.channel == "sms" for m in site.police()), 20)  # hotline down: SMS

    out = session(site, "devices", "police", "mqtt 5", "alarms", "hotline ok", "status")
    assert "er-desk-1" in out and "pin 17" in out and "node 11" in out
    assert "3 police notified" in out  # er-desk-1's LED after the hotline took it
    assert re.search(r"er-bed-11 +node 11 .* 3000 ", out)  # the battery its frames carry
    assert re.search(r"HTTP /alarm +answered 200", out)
    assert re.search(r"HTTP /alarm +answered 500", out)
    assert re.search(r"SMS  \+84912000113 +received", out) and "Đáp: OK" in out
    assert "raised" in out or "escalated" in out
    assert "hotline answers 200 again" in out
    assert "(bvdk-tinh): TROUBLE" in out and "er-duress-1" in out and "tamper" in out

    code = site.observer.alarm_for("er-bed-11")["code"]  # type: ignore[index,union-attr]
    out = session(site, f"sms 0912000113 OK {code}", "ack er-desk-1", "resolve er-desk-1")
    assert "delivered to the modem" in out
    # the console says what the gateway did, read from its journal
    assert f"gateway: accepted: alarm {code} police acknowledged (er-bed-11)" in out
    assert (obs.alarm_for("er-bed-11") or {}).get("state") == "police_acknowledged"
    assert "resolve published for alarm" in out
    assert "gateway: accepted: alarm is resolved" in out
    until(lambda: (obs.alarm_for("er-desk-1") or {}).get("state") == "resolved")


def test_console_says_why_the_gateway_ignored_an_sms_or_a_command(site: SimulatedSite) -> None:
    out = session(site, "press er-desk-1")
    obs = site.observer
    assert obs is not None
    until(lambda: (obs.alarm_for("er-desk-1") or {}).get("state") == "escalated")
    code = obs.alarm_for("er-desk-1")["code"]  # type: ignore[index]
    out = session(site, f"sms +84900000000 OK {code}", "sms +84912000113 hello",
                  "sms +84912000113 OK 99999", "resolve er-desk-1", "ack er-desk-1")
    assert "gateway: ignored: sender is not a configured police number" in out
    assert "gateway: ignored: not an 'OK <code>' reply" in out
    assert "delivered to the modem" in out
    assert "gateway: accepted: alarm is resolved" in out
    assert "error: no open alarm for er-desk-1" in out  # the ack after the resolve


def test_console_notices_its_gateway_dying(site: SimulatedSite) -> None:
    out = io.StringIO()
    console = SimConsole(site, stdin=io.StringIO(""), stdout=out)
    proc = site._proc
    assert proc is not None
    proc.kill()
    until(lambda: "!! the gateway stopped" in out.getvalue(), 5)
    assert "killed by signal 9" in out.getvalue()
    console.stdin = io.StringIO("press er-desk-1\npress er-bed-11\nsms +84912000113 OK 1234\n"
                                "devices\n")
    console.cmdloop()
    text = out.getvalue()
    assert text.count("error: the gateway stopped") == 3  # GPIO, serial and SMS alike
    assert "the states below are the last it published" in text


def test_hold_release_and_drill_from_the_console(site: SimulatedSite) -> None:
    out = session(site, "hold exam-room-3")
    assert "holding exam-room-3" in out
    until(lambda: any(m.device == "exam-room-3" and m.body and m.body["type"] == "duress"
                      for m in site.police()))
    out = session(site, "release exam-room-3", "drill er-desk-1", "modem offline",
                  "modem online", "quit", "press er-desk-1")
    assert "released exam-room-3" in out
    assert "drill alarm" in out and "raised on er-desk-1" in out
    assert "modem silent" in out and "modem online and registered" in out
    assert out.rstrip().endswith("stopping the simulated site")  # nothing after quit
    until(lambda: any(m.drill and m.target == "/drill" for m in site.police()))


def test_help_and_completion(tmp_path: Path) -> None:
    site = SimulatedSite(sim_config(tmp_path))  # completion and help need no running site
    console = SimConsole(site, stdin=io.StringIO(""), stdout=io.StringIO())
    assert console.complete_press("er-", "press er-", 6, 9) == [
        "er-desk-1", "er-resus-1", "er-door-1", "er-bed-11", "er-duress-1"]
    assert console.complete_hotline("", "hotline ", 8, 8)[:2] == ["ok", "500"]
    assert console.complete_modem("e", "modem e", 6, 7) == ["error"]
    assert "press" in console.completenames("pr")
    out = io.StringIO()
    SimConsole(site, stdin=io.StringIO("help press\nhelp\nhelp sms\n"), stdout=out).cmdloop()
    text = out.getvalue()
    assert "press ID: a short press" in text
    assert re.search(r"\n  press ID +a short press of a button\n", text)  # one line each
    assert "EOF" not in text and text.count("  quit ") == 1
    for command in ("devices", "hold", "silence", "drain", "tamper", "noisy", "modem",
                    "hotline", "sms", "police", "mqtt", "quit"):
        assert command in text
    assert "sms FROM TEXT" in text


def test_simulated_alarms_do_not_stay_on_the_broker(tmp_path: Path, broker: Broker) -> None:
    """A run clears its retained alarm documents when it stops, and a later run does not
    take an earlier run's alarms for its own."""
    from mqtt_helpers import MqttCollector

    url = f"mqtt://127.0.0.1:{broker.port}"
    with SimulatedSite(sim_config(tmp_path), mqtt_url=url) as first:
        first.press("er-desk-1")
        obs = first.observer
        assert obs is not None
        until(lambda: (obs.alarm_for("er-desk-1") or {}).get("state") == "escalated")
    late = MqttCollector(broker.port)
    late.start("alarmgw/bvdk-tinh/#")
    try:
        late.wait_for(lambda ms: late.on("gateway/status"), 5)  # retained ones have arrived
        assert [m for m in late.messages if "/alarm/" in m.topic and m.payload] == []
    finally:
        late.stop()
    with SimulatedSite(sim_config(tmp_path), mqtt_url=url, start_gateway=False) as second:
        assert second.observer is not None and second.observer.alarms() == []


def test_the_simulated_arc_from_the_console(tmp_path: Path, broker: Broker) -> None:
    from sim_helpers import sim_raw

    escalation = {**sim_raw(tmp_path)["escalation"], "dc09": {"receivers": [
        {"name": "arc", "host": "arc.example.org", "port": 9000, "account": "1A2B",
         "link_test_s": 0}]}}
    with SimulatedSite(sim_config(tmp_path, escalation=escalation),
                       mqtt_url=f"mqtt://127.0.0.1:{broker.port}") as site:
        assert site.arc is not None
        out = session(site, "arc", "arc nak 1", "press er-desk-1")
        assert "the receiving centre has received nothing" in out
        assert "the ARC answers NAK to the next 1 message(s)" in out
        arc = site.arc
        until(lambda: [a for a in arc.arrivals() if a.answer == "ACK"], 20)
        out = session(site, "arc", "arc down", "arc ack", "arc maybe")
        assert "#1A2B" in out and " PA zone 1 " in out and "-> NAK" in out and "-> ACK" in out
        assert "ARC down" in out and "the ARC answers ACK again" in out
        assert "error: arc: one of ack, nak, duh, silence, down, not 'maybe'" in out
