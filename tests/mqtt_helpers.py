"""Test helpers: a mosquitto child process and a paho subscriber that records what it sees."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Broker:
    """A real mosquitto bound to 127.0.0.1 on ``port``, with an optional extra config."""

    def __init__(self, binary: str, port: int, folder: Path, extra: str = "") -> None:
        self.binary, self.port, self.folder, self.extra = binary, port, folder, extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence false\n{self.extra}\n"
        )
        log = open(self.folder / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttCollector:
    """Subscribes and records every message; ``wait_for`` blocks (bounded) for a predicate."""

    def __init__(self, port: int, host: str = "127.0.0.1", **tls: Any) -> None:
        self.port, self.host = port, host
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
        self.client.on_message = self._on_message
        self._topics: list[str] = []
        self.client.on_connect = self._on_connect

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        for t in self._topics:
            client.subscribe(t, qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, msg.payload, msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def start(self, *topics: str) -> None:
        self._topics = list(topics)
        self.client.connect(self.host, self.port, keepalive=10)
        self.client.loop_start()
        self.wait_for(lambda ms: self.client.is_connected() or None, 10)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def wait_for(self, predicate: Callable[[list[Received]], Any], timeout: float = 10.0) -> Any:
        """Return predicate's first truthy value over the messages so far; TimeoutError if none."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self.messages))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met in {timeout} s; saw {len(self.messages)} messages")
                self._cond.wait(min(left, 0.1))

    def on(self, suffix: str) -> list[Received]:
        return [m for m in list(self.messages) if m.topic.endswith(suffix)]

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        out = [m.json() for m in self.on("/events")]
        return [e for e in out if type_ is None or e["type"] == type_]
