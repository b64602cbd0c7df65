"""``alarm-receiver demo``: both ends of the hotline on one machine, told as a timeline.

The example hospital's gateway (``examples/site.toml``: an embedded MQTT broker, GPIO on
gpiozero's MockFactory) escalates to the example ward police receiver
(``examples/receiver.toml``), both on 127.0.0.1 with a fresh shared secret. The story: a
nurse presses the panic button in the emergency ward; the receiver's wall screen rings; the
duty officer takes it ("Đã nhận") on the screen's own HTTP API, as the page does; the
hospital's alarm becomes ``police_acknowledged`` by that officer, which its desk console shows
as "Công an đã nhận — <officer>"; the patrol arrives ("Đã đến nơi"), the security desk
resolves the alarm, the officer closes it ("Kết thúc") with a note. It lives in the simulator
because it drives a gateway too (the receiver never imports the gateway's composition).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from gateway.app import Gateway
from gateway.config.schema import validate_config
from gateway.core.errors import GatewayError
from receiver.app import Receiver
from receiver.config import ReceiverConfig
from receiver.config import validate_config as validate_receiver
from simulator.broker import broker_config, free_port
from simulator.demo import EXAMPLE, GUARD, Timeline

RECEIVER_EXAMPLES = (EXAMPLE.parent / "receiver.toml",
                     Path(sys.prefix) / "share" / "alarm-gateway" / "examples" / "receiver.toml")
OFFICER, OFFICER_SHOWN = "hung", "Trung úy Nguyễn Văn Hùng"


def receiver_config(folder: Path, port: int, secret_file: Path, password: str) -> ReceiverConfig:
    """The example receiver on 127.0.0.1:``port`` (API and screen), its sites sharing the
    demo's secret file, one officer, short polls so the story moves."""
    example = next((p for p in RECEIVER_EXAMPLES if p.exists()), RECEIVER_EXAMPLES[0])
    raw = tomllib.loads(example.read_text(encoding="utf-8"))
    raw["receiver"]["max_wait_s"] = 5
    raw["api"] = {"listen": f"127.0.0.1:{port}"}
    raw["screen"] = {"listen": f"127.0.0.1:{port}"}
    raw["storage"] = {"path": str(folder / "receiver")}
    for i, site in enumerate(raw["sites"]):
        own = folder / f"site-{i}.secret"
        own.write_bytes(secret_file.read_bytes() if i == 0 else secrets.token_hex(16).encode())
        os.chmod(own, 0o600)
        site["secret_file"] = str(own)
        site["supervision_s"] = 3600
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    raw["officers"] = [{"name": OFFICER, "display_name": OFFICER_SHOWN,
                        "password_hash": hasher.hash(password)}]
    return validate_receiver(raw, base_dir=folder)


def gateway_config(folder: Path, mqtt_port: int, receiver_url: str, secret_file: Path) -> Any:
    """The example hospital, panic in the emergency ward escalated at once to the receiver."""
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["mqtt"] = {"url": f"mqtt://127.0.0.1:{mqtt_port}", "keepalive_s": 10}
    raw["storage"] = {"path": str(folder / "gateway"), "retention_days": 1}
    raw["simulation"] = True
    raw["policy"]["rules"] = [{"ward": "cap-cuu", "kind": "panic_button", "mode": "immediate"}]
    raw.pop("modem", None)
    raw.pop("console", None)
    raw["escalation"] = {"receivers": [{
        "id": "ca-phuong", "url": f"{receiver_url}/v1/alarms", "secret_file": str(secret_file),
        "timeout_s": 5, "poll_wait_s": 5}]}
    return validate_config(raw, base_dir=EXAMPLE.parent)


class Officer:
    """The duty officer at the wall screen, over its HTTP API (as the page does it)."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session, self.csrf = base, session, ""

    async def login(self, password: str) -> None:
        async with self.session.post(f"{self.base}/api/login",
                                     json={"name": OFFICER, "password": password}) as resp:
            if resp.status != 200:
                raise GatewayError(f"the demo officer cannot log in: HTTP {resp.status}")
            self.csrf = (await resp.json())["csrf"]

    async def act(self, ref: int, action: str, note: str = "") -> None:
        async with self.session.post(f"{self.base}/api/alarms/{ref}/action",
                                     json={"action": action, "note": note},
                                     headers={"X-CSRF-Token": self.csrf}) as resp:
            if resp.status != 200:
                raise GatewayError(f"'{action}' refused: HTTP {resp.status} {await resp.text()}")


async def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy ``check()`` within ``timeout`` seconds (else one clear error)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise GatewayError(f"the demo waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.02)


def _alarm(gw: Gateway, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    for doc in gw.journal.retained_all("alarm/").values():
        if isinstance(doc, dict) and accept(doc):
            return doc
    return None


def _police(doc: dict[str, Any], state: str) -> bool:
    return any(h.get("state") == state and str(h.get("by", "")).startswith("police:")
               for h in doc.get("history", []))


async def run_demo(fast: bool = False, hold_s: float = 0) -> int:
    import logging

    try:
        from amqtt.broker import Broker
    except ImportError as exc:
        raise GatewayError("the demo needs the simulator extra: "
                           "pip install 'ward-alarm-gateway[sim]'") from exc
    from gpiozero.pins.mock import MockFactory

    logging.getLogger().setLevel(logging.WARNING)  # the timeline is the output
    pause = 0.5 if fast else 2.0
    timeline = Timeline()
    with tempfile.TemporaryDirectory(prefix="alarm-receiver-demo-") as tmp:
        folder = Path(tmp)
        secret = folder / "shared.secret"
        secret.write_text(secrets.token_hex(24) + "\n")
        os.chmod(secret, 0o600)
        password = secrets.token_urlsafe(9)
        rx_port, mqtt_port = free_port(), free_port()
        rx = Receiver(receiver_config(folder, rx_port, secret, password))
        rx_stop = asyncio.Event()
        rx_task = asyncio.create_task(rx.run(rx_stop))
        broker = Broker(broker_config(mqtt_port))
        gw_stop = asyncio.Event()
        gw_task: asyncio.Task[None] | None = None
        try:
            await _until(lambda: rx.ready.is_set() or rx_task.done(), 15, "the receiver")
            if rx_task.done():
                rx_task.result()
            await broker.start()
            config = gateway_config(folder, mqtt_port, rx.urls["api"], secret)
            factory = MockFactory()
            gw = Gateway(config, simulate=True, pin_factory=factory)
            gw_task = asyncio.create_task(gw.run(gw_stop))
            await _until(lambda: gw.ready.is_set() or gw_task.done(), 15, "the gateway")
            print(f"Police receiver demo: {config.site.name} → {rx.config.receiver.name}")
            print(f"  wall screen {rx.urls['screen']} (officer {OFFICER!r}, password "
                  f"{password!r}); the gateway escalates to {rx.urls['api']}/v1/alarms")
            jar = aiohttp.CookieJar(unsafe=True)  # the screen's cookie on 127.0.0.1
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                officer = Officer(rx.urls["screen"], session)
                await officer.login(password)
                await _story(gw, factory, rx, officer, timeline, pause)
            if hold_s > 0:
                print(f"\nRunning {hold_s:.0f} s more: open {rx.urls['screen']} to look.")
                await asyncio.sleep(hold_s)
        finally:
            gw_stop.set()
            rx_stop.set()
            for task in (gw_task, rx_task):
                if task is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(10):
                            await task
            with contextlib.suppress(Exception):
                await broker.shutdown()
    print("\nDemo finished: the alarm reached the police once, and every step the officer "
          "took reached the hospital once.")
    return 0


async def _story(gw: Gateway, factory: Any, rx: Receiver, officer: Officer,
                 timeline: Timeline, pause: float) -> None:
    device = gw.config.device("er-desk-1")
    assert device is not None and device.pin is not None
    pin = factory.pin(device.pin)
    Timeline.scene("1. A nurse presses the panic button at the emergency desk")
    timeline.reset()
    timeline.say(f"pressed er-desk-1 ({device.room})")
    await asyncio.to_thread(pin.drive_low)
    await asyncio.sleep(0.15)
    await asyncio.to_thread(pin.drive_high)
    raised = await _until(lambda: _alarm(gw, lambda a: a["state"] != "resolved"), 10,
                          "the alarm at the hospital")
    timeline.say(f"hospital: alarm {raised['code']} raised, escalated at once (emergency ward)")
    record = await _until(lambda: next(iter(rx.desk.open_records()), None), 20,
                          "the alarm on the wall screen")
    site = rx.config.site(record.alarm.site)
    timeline.say(f"police wall screen RINGS: {site.name if site else record.alarm.site} · "
                 f"{record.alarm.ward_name} · {record.alarm.room} · code {record.alarm.code} "
                 f"(ref {rx.desk.ref_text(record.ref)})")
    await asyncio.sleep(pause)

    Timeline.scene(f"2. {OFFICER_SHOWN} presses \"Đã nhận\" on the wall screen")
    timeline.reset()
    await officer.act(record.ref, "take")
    timeline.say("receiver: committed, the ack is waiting for the hospital's poll")
    doc = await _until(lambda: _alarm(gw, lambda a: a["state"] == "police_acknowledged"), 10,
                       "police_acknowledged at the hospital")
    by = next(h["by"] for h in doc["history"] if h["state"] == "police_acknowledged")
    timeline.say(f"hospital: alarm {doc['code']} police_acknowledged by {by}")
    timeline.say(f"hospital desk console shows: \"Công an đã nhận — {by.removeprefix('police:')}\"")
    await asyncio.sleep(pause)

    Timeline.scene("3. The patrol arrives: \"Đã đến nơi\"")
    timeline.reset()
    await officer.act(record.ref, "on_scene")
    await _until(lambda: _alarm(gw, lambda a: _police(a, "on_scene")), 10, "on_scene")
    timeline.say("hospital desk console shows: \"Công an đã đến\"")
    await asyncio.sleep(pause)

    Timeline.scene("4. The security desk resolves the alarm; the officer closes the case")
    timeline.reset()
    assert gw.command_handler is not None
    await gw.command_handler(doc["id"], (
        '{"action": "resolve", "by": "' + GUARD + '", "note": "Đã ổn định"}').encode(), "demo")
    await officer.act(record.ref, "close", "Đã lập biên bản, không có thương tích")
    done = await _until(lambda: _alarm(gw, lambda a: a["state"] == "resolved"
                                       and _police(a, "closed")), 10, "closed")
    history = " → ".join(f"{h['state']} ({h.get('by') or '-'})" for h in done["history"])
    timeline.say(f"hospital history: {history}")

