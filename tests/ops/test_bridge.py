"""Many sites: the site mosquitto bridges the gateway's topics to a central mosquitto, using
examples/mosquitto/site-bridge.conf as shipped (TLS and login lines dropped, addresses and
the site id replaced). Events and retained state reach the centre; while the centre is
down the site's bridge queues, and the centre gets everything once it is back."""

from __future__ import annotations

from pathlib import Path

from conftest import MOSQUITTO, ROOT, free_port
from mqtt_helpers import Broker, wait_for_port

from .helpers import SITE, Watcher, as_this_user, site_file

EXAMPLE = ROOT / "examples" / "mosquitto" / "site-bridge.conf"
DROPPED = ("bridge_cafile", "bridge_certfile", "bridge_keyfile", "bridge_insecure",
           "remote_username", "remote_password")


def bridge_config(central_port: int) -> str:
    lines = []
    for line in EXAMPLE.read_text().replace("bvdk-tinh", SITE).splitlines():
        word = line.split(" ", 1)[0]
        if word in DROPPED:
            continue
        if word == "address":
            line = f"address 127.0.0.1:{central_port}"
        elif word == "restart_timeout":
            line = "restart_timeout 1"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_example_bridge_lines() -> None:
    text = EXAMPLE.read_text()
    assert "topic alarm/+/set in 1 alarmgw/bvdk-tinh/ alarmgw/bvdk-tinh/" in text
    for needed in ("cleansession false", "queue_qos0_messages true", "remote_clientid ",
                   "local_clientid ", "max_queued_messages "):
        assert needed in text


def _pressed(w: Watcher, device: str) -> list[dict]:
    return [e for e in w.events("press") if e["device"] == device]


def test_bridge_carries_events_and_queues_through_a_central_outage(
    tmp_path: Path, gateway_process: type
) -> None:
    central_dir = tmp_path / "central"
    central = Broker(MOSQUITTO, free_port(), central_dir, extra=as_this_user() +
                     f"persistence true\npersistence_location {central_dir}/\n")
    site = Broker(MOSQUITTO, free_port(), tmp_path / "site", extra=bridge_config(central.port))
    central.start()
    site.start()
    # a persistent subscriber at the centre: messages for it are kept across the restart
    watcher = Watcher(central.port, client_id="city-desk-test", clean=False)
    local = Watcher(site.port)
    gw = gateway_process(site_file(tmp_path, site.port), tmp_path / "gateway.log")
    try:
        watcher.start(f"alarmgw/{SITE}/#")
        local.start(f"alarmgw/{SITE}/events")
        gw.start()
        gw.wait_ready()
        gw.control({"cmd": "click", "device": "er-desk-1", "seconds": 0.1})
        watcher.wait_for(lambda ms: _pressed(watcher, "er-desk-1"), 15)

        late = Watcher(central.port)  # retained device state is kept at the centre
        late.start(f"alarmgw/{SITE}/device/+/state")
        try:
            state = late.wait_for(lambda ms: [m for m in ms if m.retain and
                                              m.topic.endswith("/er-desk-1/state") and
                                              m.json()["state"] == "alarm"], 15)
            assert state[0].qos == 1
        finally:
            late.stop()

        central.stop()
        gw.control({"cmd": "press", "device": "exam-3"})
        gw.control({"cmd": "release", "device": "exam-3"})
        # published at the site while the centre is down: only the bridge's queue holds them
        local.wait_for(lambda ms: [e for e in local.events("release") if e["device"] == "exam-3"])
        assert not _pressed(watcher, "exam-3")
        central.start()
        wait_for_port(central.port)
        watcher.wait_for(lambda ms: _pressed(watcher, "exam-3"), 30)
        watcher.wait_for(lambda ms: [e for e in watcher.events("release")
                                     if e["device"] == "exam-3"], 15)
        seqs = [e["seq"] for e in watcher.events()]
        assert seqs == sorted(seqs)  # the bridge keeps journal order
    finally:
        watcher.stop()
        local.stop()
        gw.stop()
        site.stop()
        central.stop()
