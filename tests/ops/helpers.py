"""Helpers for the operations tests: site files with extra [mqtt] keys, an authenticated or
persistent MQTT watcher, an in-process gateway, and a systemd notify socket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from conftest import write_site
from mqtt_helpers import MqttCollector

from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.ops.control import request
from gateway.paths import control_path

SITE = "bv-test"


def as_this_user() -> str:
    """mosquitto started as root switches to its own user and then cannot read files in
    pytest's owner-only folders: keep it as the user running the tests."""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"


def site_file(tmp_path: Path, port: int, *, mqtt: str = "", extra: str = "",
              url: str | None = None) -> Path:
    """``write_site`` with ``mqtt`` lines added to its ``[mqtt]`` table (and another URL)."""
    path = write_site(tmp_path, port, extra)
    text = path.read_text(encoding="utf-8")
    old = f'url = "mqtt://127.0.0.1:{port}"\n'
    assert old in text
    new = f'url = "{url or f"mqtt://127.0.0.1:{port}"}"\n{mqtt}\n'
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


class Watcher(MqttCollector):
    """A collector that can log in and keep a persistent session (fixed id, clean=False)."""

    def __init__(self, port: int, *, username: str | None = None, password: str | None = None,
                 client_id: str = "", clean: bool = True) -> None:
        super().__init__(port)
        if client_id or not clean:
            self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=clean)
            self.client.on_message = self._on_message
            self.client.on_connect = self._on_connect
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.2, 1)


class NotifySocket:
    """A datagram socket standing in for systemd's ``NOTIFY_SOCKET`` (abstract namespace)."""

    def __init__(self) -> None:
        self.name = f"@alarmgw-test-{uuid.uuid4().hex[:12]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.setblocking(False)
        self.seen: list[str] = []

    def drain(self) -> list[str]:
        """Every datagram already queued, without waiting (blocking-free)."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                break
        self.seen.extend(out)
        return out

    async def expect(self, line: str, within: float = 10.0, count: int = 1) -> None:
        """Wait (bounded) until ``line`` appeared in ``count`` datagrams in all."""
        loop = asyncio.get_running_loop()

        async def until() -> None:
            while sum(line in d.split("\n") for d in self.seen) < count:
                data = await loop.sock_recv(self.sock, 4096)
                self.seen.append(data.decode())

        await asyncio.wait_for(until(), within)

    def close(self) -> None:
        self.sock.close()


@contextlib.asynccontextmanager
async def running_gateway(config: Path) -> AsyncIterator[Gateway]:
    """An in-process gateway on MockFactory, stopped cleanly on exit."""
    gw = Gateway(load_config(config), simulate=True)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await asyncio.wait_for(gw.ready.wait(), 15)
        yield gw
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def control(gw: Gateway, payload: dict[str, Any]) -> dict[str, Any]:
    return await request(control_path(gw.config), payload, timeout=10)
