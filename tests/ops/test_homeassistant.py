"""Home Assistant MQTT discovery: payloads checked against the binary_sensor discovery
schema (keys as Home Assistant documents them), and a real mosquitto round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
from mqtt_helpers import Broker, MqttCollector

from gateway.config.schema import validate_config
from gateway.mqtt.homeassistant import discovery_configs

from .helpers import SITE, site_file

# The MQTT binary_sensor options (home-assistant.io integrations/binary_sensor.mqtt), with
# their types. ``object_id`` is left out on purpose: replaced by default_entity_id (2025.10).
STR, INT, BOOL, LIST, DICT = str, int, bool, list, dict
BINARY_SENSOR_KEYS: dict[str, type | tuple[type, ...]] = {
    "availability": LIST, "availability_mode": STR, "availability_template": STR,
    "availability_topic": STR, "default_entity_id": STR, "device": DICT, "device_class": STR,
    "enabled_by_default": BOOL, "encoding": STR, "entity_category": STR, "entity_picture": STR,
    "expire_after": INT, "force_update": BOOL, "icon": STR, "json_attributes_template": STR,
    "json_attributes_topic": STR, "name": (STR, type(None)), "off_delay": INT,
    "payload_available": STR, "payload_not_available": STR, "payload_off": STR,
    "payload_on": STR, "platform": STR, "qos": INT, "state_topic": STR, "unique_id": STR,
    "value_template": STR,
}
DEVICE_KEYS: dict[str, type | tuple[type, ...]] = {
    "configuration_url": STR, "connections": LIST, "hw_version": STR, "identifiers": (LIST, STR),
    "manufacturer": STR, "model": STR, "model_id": STR, "name": STR, "serial_number": STR,
    "suggested_area": STR, "sw_version": STR, "via_device": STR,
}
DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}
TOPIC = re.compile(r"^[^/]+/binary_sensor/(?:[A-Za-z0-9_-]+/)?([A-Za-z0-9_-]+)/config$")


def schema_problems(topic: str, payload: dict[str, Any]) -> list[str]:
    """Why Home Assistant would reject or misread this binary_sensor discovery payload."""
    out = [f"unknown key {k!r}" for k in payload if k not in BINARY_SENSOR_KEYS]
    out += [f"{k} must be {t}" for k, t in BINARY_SENSOR_KEYS.items()
            if k in payload and not isinstance(payload[k], t)]
    if not isinstance(payload.get("state_topic"), str) or not payload["state_topic"]:
        out.append("state_topic is required")
    if "device_class" in payload and payload["device_class"] not in DEVICE_CLASSES:
        out.append(f"device_class {payload['device_class']!r} is not a binary_sensor class")
    if payload.get("entity_category") not in (None, "config", "diagnostic"):
        out.append("entity_category must be config or diagnostic")
    if payload.get("qos", 0) not in (0, 1, 2):
        out.append("qos must be 0, 1 or 2")
    if "availability" in payload and "availability_topic" in payload:
        out.append("availability and availability_topic are exclusive")
    device = payload.get("device")
    if device is not None:
        out += [f"device: unknown key {k!r}" for k in device if k not in DEVICE_KEYS]
        out += [f"device.{k} must be {t}" for k, t in DEVICE_KEYS.items()
                if k in device and not isinstance(device[k], t)]
        if not (device.get("identifiers") or device.get("connections")):
            out.append("device needs identifiers or connections")
        if "unique_id" not in payload:
            out.append("a device block needs unique_id")
    match = TOPIC.match(topic)
    if match is None:
        out.append(f"topic {topic!r} is not <prefix>/binary_sensor/[<node>/]<id>/config")
    elif payload.get("unique_id") and match.group(1) != payload["unique_id"]:
        out.append("object id in the topic should be the unique_id")
    entity = payload.get("default_entity_id")
    if entity is not None and not re.fullmatch(r"binary_sensor\.[a-z0-9_-]+", entity.lower()):
        out.append("default_entity_id must be binary_sensor.<id>")
    return out


def _config(tmp_path: Path) -> Any:
    key = tmp_path / "node.key"
    key.write_text("00112233445566778899aabbccddeeff\n")
    key.chmod(0o600)
    raw = {
        "site": {"id": SITE, "name": "Bệnh viện Thử nghiệm"},
        "wards": [{"id": "cap-cuu", "name": "Khoa Cấp cứu"}],
        "devices": [
            {"id": "er-desk-1", "ward": "cap-cuu", "room": "Quầy", "pin": 17},
            {"id": "node-7", "ward": "cap-cuu", "room": "Phòng 7", "input": "serial",
             "node": 7, "key_file": str(key)},
        ],
        "serial": {"port": "/dev/ttyAMA0", "low_battery_mv": 2600},
        "homeassistant": {"enabled": True},
    }
    return validate_config(raw, tmp_path)


def test_discovery_payloads_follow_the_schema(tmp_path: Path) -> None:
    configs = discovery_configs(_config(tmp_path))
    p = "homeassistant/binary_sensor"
    assert set(configs) == {
        f"{p}/{SITE}_gateway_connectivity/config",
        f"{p}/{SITE}_er-desk-1/config", f"{p}/{SITE}_er-desk-1_trouble/config",
        f"{p}/{SITE}_node-7/config", f"{p}/{SITE}_node-7_trouble/config",
        f"{p}/{SITE}_node-7_tamper/config", f"{p}/{SITE}_node-7_battery/config",
    }
    for topic, payload in configs.items():
        assert schema_problems(topic, json.loads(json.dumps(payload))) == [], topic
    ids = [c["unique_id"] for c in configs.values()]
    assert len(ids) == len(set(ids))
    gateway_ids = configs[f"{p}/{SITE}_gateway_connectivity/config"]["device"]["identifiers"]
    alarm = configs[f"{p}/{SITE}_er-desk-1/config"]
    assert alarm["device_class"] == "safety"
    assert alarm["state_topic"] == f"alarmgw/{SITE}/device/er-desk-1/state"
    assert alarm["availability_topic"] == f"alarmgw/{SITE}/gateway/status"
    assert (alarm["payload_available"], alarm["payload_not_available"]) == ("online", "offline")
    assert "value_json.state == 'alarm'" in alarm["value_template"]
    assert alarm["device"]["via_device"] in gateway_ids
    classes = {c["device_class"] for t, c in configs.items() if "node-7" in t}
    assert classes == {"safety", "problem", "tamper", "battery"}
    assert "2600" in configs[f"{p}/{SITE}_node-7_battery/config"]["value_template"]


def test_schema_check_catches_mistakes() -> None:
    bad = {"stat_t": "x", "device_class": "panic", "device": {"name": "n"}}
    problems = schema_problems("homeassistant/binary_sensor/a b/config", bad)
    assert any("unknown key 'stat_t'" in p for p in problems)
    assert "state_topic is required" in problems
    assert any("device_class" in p for p in problems)
    assert "device needs identifiers or connections" in problems
    assert any("topic" in p for p in problems)


def test_retained_discovery_round_trip(broker: Broker, collector: MqttCollector,
                                       tmp_path: Path, gateway_process: type) -> None:
    config = site_file(tmp_path, broker.port, extra="[homeassistant]\nenabled = true\n")
    gw = gateway_process(config, tmp_path / "gateway.log")
    gw.start()
    gw.wait_ready()
    prefix = "homeassistant/binary_sensor/"
    expected = {f"{prefix}{SITE}_{d}{w}/config" for d in ("er-desk-1", "exam-3")
                for w in ("", "_trouble")} | {f"{prefix}{SITE}_gateway_connectivity/config"}
    collector.wait_for(lambda ms: expected <= {m.topic for m in ms})

    late = MqttCollector(broker.port)  # a subscriber arriving later sees them retained
    late.start("homeassistant/#")
    try:
        found = late.wait_for(lambda ms: expected <= {m.topic for m in ms} and ms)
        for m in found:
            if m.topic in expected:
                assert m.retain and m.qos == 1
                assert schema_problems(m.topic, m.json()) == []
    finally:
        late.stop()

    first = len([m for m in collector.messages if m.topic in expected])
    publish.single("homeassistant/status", "online", hostname="127.0.0.1", port=broker.port)
    collector.wait_for(lambda ms: len([m for m in ms if m.topic in expected]) >= first + len(expected))

    gw.control({"cmd": "click", "device": "er-desk-1", "seconds": 0.1})
    state = collector.wait_for(lambda ms: [m.json() for m in ms
                                           if m.topic.endswith("/device/er-desk-1/state")
                                           and m.json()["state"] == "alarm"])
    assert state[-1]["device"] == "er-desk-1"
