"""The simulator's view of the site's MQTT: what the security desk's screens would show.

A paho client in its own thread, subscribed to ``<prefix>/<site>/#``. It keeps the last
messages (for the console's ``mqtt``), the retained device states and alarm documents
(for ``devices`` and the scenario expectations), and publishes ``alarm/<id>/set`` commands
as the security desk would. Thread-safe; :meth:`wait_for` blocks, bounded, on a predicate.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as paho

from gateway.mqtt.link import BrokerSettings

T = TypeVar("T")
KEEP = 500  # messages kept for the console


@dataclass(frozen=True, slots=True)
class Seen:
    """One message: ``topic`` relative to ``<prefix>/<site>/``; ``at`` monotonic seconds."""

    at: float
    topic: str
    payload: str
    retain: bool
    wall: float = 0.0  # unix seconds, for display in the site's time zone


class MqttObserver:
    """Watches one site's topics on the broker of ``settings`` (the derived config's)."""

    def __init__(self, settings: BrokerSettings, client_id: str) -> None:
        self.settings = settings
        self.base = settings.base
        self._client_id = client_id
        self._cond = threading.Condition()
        self._recent: deque[Seen] = deque(maxlen=KEEP)
        self._devices: dict[str, dict[str, Any]] = {}
        self._alarms: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._client: paho.Client | None = None
        #: JSON documents that could not be read (malformed, or nested too deep to parse)
        self.unreadable = 0

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raise ``ConnectionError`` if the broker is not there."""
        s = self.settings
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self._client_id)
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=s.ca_file, certfile=s.client_cert, keyfile=s.client_key,
                           cert_reqs=ssl.CERT_NONE if s.tls_insecure else ssl.CERT_REQUIRED)
            client.tls_insecure_set(s.tls_insecure)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self._client = client
        try:
            client.connect(s.host, s.port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(f"MQTT broker {s.host}:{s.port}: {exc}") from exc
        client.loop_start()
        if not self.wait_for(lambda: client.is_connected() or None, timeout):
            self.stop()
            raise ConnectionError(f"MQTT broker {s.host}:{s.port} did not accept us")

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(f"{self.base}/#", qos=1)
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        topic = msg.topic[len(self.base) + 1:]
        text = msg.payload.decode("utf-8", errors="replace")
        with self._cond:
            self._recent.append(Seen(time.monotonic(), topic, text, bool(msg.retain), time.time()))
            self._fold(topic, text, bool(msg.retain))
            self._cond.notify_all()

    def _fold(self, topic: str, text: str, stale: bool) -> None:
        """``stale``: retained from before we subscribed. Alarm documents left by an earlier
        run are ignored (their journal is gone); device states are republished anyway.
        Anyone on the broker can publish here: a document that does not parse, or is
        nested too deep for the parser (``RecursionError``), is counted, never raised, so
        the paho thread (and with it the whole view) survives."""
        if not _folded(topic) or not text:
            return
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            self.unreadable += 1
            return
        if not isinstance(doc, dict):
            self.unreadable += 1
            return
        parts = topic.split("/")
        if len(parts) == 3 and parts[0] == "device" and parts[2] == "state":
            self._devices[parts[1]] = doc
        elif len(parts) == 2 and parts[0] == "alarm" and not stale:
            self._alarms[parts[1]] = doc
        elif topic == "events":
            self._events.append(doc)

    # -- views --------------------------------------------------------------------------
    def recent(self, n: int = 20) -> list[Seen]:
        with self._cond:
            return list(self._recent)[-n:]

    def device_state(self, device: str) -> dict[str, Any] | None:
        with self._cond:
            return self._devices.get(device)

    def alarms(self) -> list[dict[str, Any]]:
        with self._cond:
            return sorted(self._alarms.values(), key=lambda a: str(a.get("raised_at")))

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._events)

    def alarm_for(self, device: str, drill: bool | None = None) -> dict[str, Any] | None:
        """The device's latest alarm (an open one first), optionally drills only / none."""
        mine = [a for a in self.alarms() if a.get("device") == device
                and (drill is None or bool(a.get("drill")) == drill)]
        open_ = [a for a in mine if a.get("state") != "resolved"]
        found = open_ or mine
        return found[-1] if found else None

    def clear_alarms(self, timeout: float = 5.0) -> int:
        """Remove the retained ``alarm/<id>`` documents of this run from the broker, so
        simulated alarms do not stay on the security desk's screens; returns how many."""
        with self._cond:
            ids = list(self._alarms)
        client = self._client
        if client is None:
            return 0
        infos = [client.publish(f"{self.base}/alarm/{i}", b"", qos=1, retain=True) for i in ids]
        for info in infos:
            info.wait_for_publish(timeout)
        return len(ids)

    def wait_for(self, predicate: Callable[[], T | None], timeout: float) -> T | None:
        """``predicate()``'s first truthy value, re-checked on every message (and every
        0.1 s), or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value or None
                self._cond.wait(min(left, 0.1))

    def publish(self, topic: str, payload: dict[str, Any], timeout: float = 5.0) -> None:
        """Publish under the site's base (QoS 1) and wait until the broker took it."""
        if self._client is None:
            raise ConnectionError("the MQTT observer is not connected")
        info = self._client.publish(f"{self.base}/{topic}", json.dumps(payload), qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise ConnectionError(f"the broker did not confirm {topic} in {timeout} s")


def _folded(topic: str) -> bool:
    """Whether ``topic`` (relative to the site) carries a JSON document the view keeps."""
    parts = topic.split("/")
    return (topic == "events" or (len(parts) == 2 and parts[0] == "alarm")
            or (len(parts) == 3 and parts[0] == "device" and parts[2] == "state"))
