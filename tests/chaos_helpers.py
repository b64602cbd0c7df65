"""Helpers for the chaos test (tests/test_chaos.py): a broker that keeps its sessions across
restarts, a durable MQTT subscriber, and readers for what the journal, the serial line and
the police simulators recorded."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from mqtt_helpers import Broker, wait_for_port

from drivers.frames import DOWNLINK, UNKNOWN_NODE, FrameError, FrameType, Missing, decode_frame
from gateway.escalation.messages import sms_reference


class PersistentBroker(Broker):
    """mosquitto with persistence: a clean stop (SIGTERM) writes its sessions, subscriptions
    and queued QoS 1 messages to disk and a start reads them back, so a subscriber's
    persistent session survives a broker restart, as it would on a site's broker."""

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        # run as root, mosquitto drops to the "mosquitto" user, which cannot write its
        # database in our folder: keep it as the user running the tests
        user = pwd.getpwuid(os.getuid()).pw_name
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {user}\n"
            f"persistence true\npersistence_location {self.folder}/\n"
            "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 100\n"
            f"{self.extra}\n"
        )
        log = open(self.folder / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class DurableSubscriber:
    """A persistent MQTT session (clean_session False, fixed client id, QoS 1): messages
    published while it is away (gateway or broker restarting) are queued for it.

    Records every ``events`` id and the alarm documents; can publish commands."""

    def __init__(self, port: int, prefix: str, client_id: str = "chaos-observer") -> None:
        self.port = port
        self.prefix = prefix
        self.lock = threading.Lock()
        self.event_ids: set[str] = set()
        self.event_messages = 0
        self.alarm_docs: dict[str, list[dict[str, Any]]] = {}
        self.connects = 0
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        with self.lock:
            self.connects += 1
        client.subscribe([(f"{self.prefix}/events", 1), (f"{self.prefix}/alarm/+", 1)])

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if not msg.payload:
            return
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            if msg.topic.endswith("/events"):
                self.event_messages += 1
                self.event_ids.add(str(body.get("id")))
            elif "/alarm/" in msg.topic and isinstance(body, dict):
                self.alarm_docs.setdefault(str(body.get("id")), []).append(body)

    def start(self, timeout: float = 10.0) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError("the observer could not connect to the broker")
            time.sleep(0.02)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.event_ids)

    def alarm_states(self) -> dict[str, set[str]]:
        """Every state each alarm document was seen in."""
        with self.lock:
            return {a: {d.get("state", "") for d in docs} for a, docs in self.alarm_docs.items()}

    def command(self, alarm_id: str, payload: dict[str, Any]) -> None:
        self.client.publish(f"{self.prefix}/alarm/{alarm_id}/set", json.dumps(payload), qos=1)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every committed event body, in journal order (read while the gateway runs)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT body FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def acked_frames(lines: Iterable[bytes], keys: dict[int, bytes | None]) -> set[tuple[int, int]]:
    """``(node, seq)`` of every ACK a node would accept among the downlink ``lines`` (as
    the firmware reads them: from the last ``$``, CRC and, for a keyed node, MAC checked)."""

    def key_for(node: int) -> bytes | Missing | None:
        return keys[node] if node in keys else UNKNOWN_NODE

    out: set[tuple[int, int]] = set()
    for line in lines:
        start = line.rfind(b"$")
        if start < 0:
            continue
        try:
            frame = decode_frame(line[start:], key_for, accept=DOWNLINK)
        except FrameError:
            continue
        if frame.type == FrameType.ACK:
            out.add((frame.node, frame.seq))
    return out


def sms_ref(text: str) -> str | None:
    """The six-character reference an escalation SMS ends with (``#ABCDEF`` or
    ``#ABCDEF-2``), without the resend suffix."""
    mark = text.rfind("#")
    if mark < 0:
        return None
    return text[mark + 1:].split("-")[0].strip()[:6] or None


@dataclass
class Plans:
    """The escalation plans the journal holds (``alarm_state`` events with a plan)."""

    plans: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)  # escalation_id -> plan
    by_ref: dict[str, str] = field(default_factory=dict)  # SMS reference -> escalation_id

    @classmethod
    def from_events(cls, events: list[dict[str, Any]]) -> Plans:
        out = cls()
        for e in events:
            plan = (e.get("detail") or {}).get("escalation")
            if e["type"] != "alarm_state" or not isinstance(plan, dict):
                continue
            out.plans.append(plan)
            for d in plan["deliveries"]:
                out.by_id[d["escalation_id"]] = plan
                out.by_ref[sms_reference(d["escalation_id"])] = d["escalation_id"]
        return out

    def ids_for(self, alarm_id: str) -> set[str]:
        return {d["escalation_id"] for p in self.plans if alarm_id in p["alarms"]
                for d in p["deliveries"]}

