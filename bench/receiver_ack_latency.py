"""The officer's "Đã nhận" → the hospital's alarm ``police_acknowledged``.

A real receiver process and an in-process gateway (loopback mosquitto, GPIO on MockFactory,
policy ``immediate``, one ``[[escalation.receivers]]`` with the default 25 s long-poll). For
each alarm: a press, the POST delivered, then the officer's "take" on the wall screen's HTTP
API (as the page sends it); the latency runs from just before that request leaves to the
moment the gateway's loop sees ``police_acknowledged`` committed to its journal. Each alarm
is resolved before the next press; the first few warm up and are not counted.

    python -m bench.receiver_ack_latency [--alarms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sqlite3
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from bench.common import machine, mosquitto
from bench.escalation_latency import DEVICES, SITE, WARM_UP, Commits, click, delivered
from bench.receiver_common import (
    OFFICER,
    PASSWORD,
    free_port,
    percentile,
    receiver_process,
    site_secret,
    write_receiver_config,
)


def gateway_site(folder: Path, mqtt_port: int, receiver: str) -> Path:
    secret = folder / "receiver.secret"
    secret.write_bytes(site_secret(0) + b"\n")
    os.chmod(secret, 0o600)
    devices = "".join(f'[[devices]]\nid = "b{i}"\nward = "cap-cuu"\nroom = "P{i}"\npin = {i + 2}\n'
                      for i in range(DEVICES))
    escalation = (f'[[escalation.receivers]]\nid = "ca-bench"\nurl = "{receiver}/v1/alarms"\n'
                  f'secret_file = "{secret}"\n')
    text = SITE.format(devices=devices, port=mqtt_port, storage=folder / "gw",
                       escalation=escalation).replace('id = "bench"', 'id = "site-000"', 1)
    path = folder / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def receiver_ref(db: Path, alarm_id: str) -> int | None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT ref FROM alarms WHERE alarm_id=?", (alarm_id,)).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else None


class Officer:
    def __init__(self, base: str) -> None:
        self.base, self.session = base, requests.Session()
        resp = self.session.post(f"{base}/api/login",
                                 json={"name": OFFICER, "password": PASSWORD}, timeout=10)
        resp.raise_for_status()
        self.csrf = resp.json()["csrf"]

    def take(self, ref: int) -> float:
        """Send "Đã nhận"; returns the wall time just before the request left."""
        t0 = time.time()
        resp = self.session.post(f"{self.base}/api/alarms/{ref}/action", json={"action": "take"},
                                 headers={"X-CSRF-Token": self.csrf}, timeout=10)
        resp.raise_for_status()
        return t0


async def _run(config: Path, db: Path, base: str, alarms: int) -> list[float]:
    from gpiozero.pins.mock import MockFactory

    from gateway.app import Gateway
    from gateway.config.schema import load_config

    factory = MockFactory()
    gw = Gateway(load_config(config), simulate=True, pin_factory=factory)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await asyncio.wait_for(gw.ready.wait(), 15)
    commits = Commits(gw.journal)
    officer = await asyncio.to_thread(Officer, base)
    pins = [factory.pin(i + 2) for i in range(DEVICES)]
    out: list[float] = []
    seen: dict[str, float] = {}

    def on_commit() -> None:  # stamps the first commit that shows the alarm taken
        for a in gw.alarm_engine.open_alarms():
            if a.state == "police_acknowledged":
                seen.setdefault(a.id, time.time())

    gw.journal.add_listener(on_commit)
    try:
        for n in range(alarms + WARM_UP):
            await asyncio.to_thread(click, pins[n % DEVICES])
            [alarm] = await commits.until(gw.alarm_engine.open_alarms)
            await commits.until(functools.partial(delivered, alarm))
            ref = receiver_ref(db, alarm.id)
            assert ref is not None, "delivered but not at the receiver"
            t0 = await asyncio.to_thread(officer.take, ref)
            await commits.until(lambda a=alarm: a.id in seen)
            if n >= WARM_UP:
                out.append(seen[alarm.id] - t0)
            assert gw.command_handler is not None
            await gw.command_handler(alarm.id, b'{"action":"resolve","by":"bench"}', "bench")
            await commits.until(lambda: not gw.alarm_engine.open_alarms())
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)
        factory.reset()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with ExitStack() as stack:
        mqtt_port = stack.enter_context(mosquitto())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        port = free_port()
        rx_config = write_receiver_config(folder, 1, port)
        stack.enter_context(receiver_process(rx_config, port))
        base = f"http://127.0.0.1:{port}"
        config = gateway_site(folder, mqtt_port, base)
        ms = [s * 1000 for s in asyncio.run(
            _run(config, folder / "var" / "receiver.sqlite3", base, args.alarms))]
    print(f"officer 'Đã nhận' → gateway police_acknowledged over {len(ms)} alarms "
          f"(ack long-poll wait 25 s): p50 {percentile(ms, 50):.1f} ms, "
          f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()
