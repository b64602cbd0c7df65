"""The simulator's MQTT view survives hostile documents: anyone on the broker can publish."""

from __future__ import annotations

import gc
import json

import paho.mqtt.client as paho
from mqtt_helpers import Broker

from gateway.mqtt.link import BrokerSettings
from simulator.observer import MqttObserver


def _settings(port: int) -> BrokerSettings:
    return BrokerSettings(host="127.0.0.1", port=port, tls=False, username=None, password=None,
                          ca_file=None, client_cert=None, client_key=None, keepalive_s=10,
                          client_id="obs-test", base="alarmgw/bv-test")


def _publish(port: int, topic: str, payload: str) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hostile")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_deeply_nested_json_is_counted_and_the_view_keeps_working(broker: Broker) -> None:
    # earlier tests' garbage is finalized now, not inside the parser's deep recursion
    # (where a finalizer's warning cannot even be reported)
    gc.collect()
    observer = MqttObserver(_settings(broker.port), "sim-observer-test")
    observer.start()
    try:
        _publish(broker.port, "alarmgw/bv-test/events", "[" * 200_000 + "]" * 200_000)
        _publish(broker.port, "alarmgw/bv-test/alarm/a1", '{"a":' * 100_000 + "1" + "}" * 100_000)
        _publish(broker.port, "alarmgw/bv-test/events", "not json")
        _publish(broker.port, "alarmgw/bv-test/gateway/status", "online")  # plain text is fine
        good = {"id": "e1", "type": "press", "device": "er-desk-1"}
        _publish(broker.port, "alarmgw/bv-test/events", json.dumps(good))
        assert observer.wait_for(lambda: observer.events() or None, 10) == [good]
        assert observer.unreadable == 3
    finally:
        observer.stop()
