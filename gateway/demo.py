"""``alarm-gateway demo``: the example hospital, with nothing attached, told as a timeline.

An embedded MQTT broker (amqtt, in-process), the gateway on gpiozero's MockFactory with the
example site, and scripted presses; every step is printed with its time since the press:
pressed → committed (journal seq) → published (seen by a subscriber). Scenes after the
first are added by later features (escalation to the police) through :data:`SCENES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.config import SiteConfig, validate_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "site.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Timeline:
    """Prints ``+S.mmm s  what`` lines relative to the last scene's start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def reset(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"  +{time.monotonic() - self.t0:7.3f} s  {text}", flush=True)

    @staticmethod
    def scene(title: str) -> None:
        print(f"\n== {title}", flush=True)


class Demo:
    """The running pieces a scene can use."""

    def __init__(self, gw: Gateway, factory: Any, timeline: Timeline, fast: bool) -> None:
        self.gw, self.factory, self.timeline, self.fast = gw, factory, timeline, fast
        self.extras: dict[str, Any] = {}

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds / 4 if self.fast else seconds)

    async def press(self, device: str, hold_s: float = 0.15) -> None:
        dev = self.gw.config.device(device)
        assert dev is not None and dev.pin is not None
        pin = self.factory.pin(dev.pin)
        self.timeline.reset()
        self.timeline.say(f"pressed {device} ({dev.room})")
        await asyncio.to_thread(pin.drive_low)
        await asyncio.sleep(hold_s)
        await asyncio.to_thread(pin.drive_high)


Scene = Callable[[Demo], Awaitable[None]]


async def scene_press(demo: Demo) -> None:
    Timeline.scene("1. A nurse presses the panic button at the emergency desk")
    await demo.press("er-desk-1")
    await demo.pause(1.5)


async def scene_door(demo: Demo) -> None:
    Timeline.scene("2. The back door of the emergency ward opens and closes")
    await demo.press("er-door-1", hold_s=0.5)
    await demo.pause(1.5)


SCENES: list[Scene] = [scene_press, scene_door]


def demo_config(folder: Path, port: int) -> SiteConfig:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["mqtt"] = {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": 10}
    raw["storage"] = {"path": str(folder / "var"), "retention_days": 1}
    raw["simulation"] = True
    return validate_config(raw, base_dir=EXAMPLE.parent)


async def run_demo(fast: bool = False) -> int:
    import logging

    from amqtt.broker import Broker
    from gpiozero.pins.mock import MockFactory

    logging.getLogger().setLevel(logging.WARNING)  # the timeline is the output
    with tempfile.TemporaryDirectory(prefix="alarm-demo-") as tmp:
        port = _free_port()
        broker = Broker(_broker_config(port))
        await broker.start()
        config = demo_config(Path(tmp), port)
        print(f"Ward alarm gateway demo: {config.site.name}")
        print(f"  embedded MQTT broker on 127.0.0.1:{port}, GPIO on MockFactory, journal in {tmp}")
        factory = MockFactory()
        gw = Gateway(config, simulate=True, pin_factory=factory)
        timeline = Timeline()
        stop = asyncio.Event()
        gw_task = asyncio.create_task(gw.run(stop))
        try:
            await asyncio.wait_for(gw.ready.wait(), 15)
            await asyncio.wait_for(gw.mqtt.connected.wait(), 15)
            watcher = asyncio.create_task(_watch(gw, port, timeline))
            committed = _print_commits(gw, timeline)
            demo = Demo(gw, factory, timeline, fast)
            for scene in SCENES:
                await scene(demo)
            gw.journal.remove_listener(committed)
            watcher.cancel()
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(gw_task, 10)
            await broker.shutdown()
    print("\nDemo finished: every press was committed to the journal before it was published.")
    return 0


def _broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _print_commits(gw: Gateway, timeline: Timeline) -> Callable[[], None]:
    last = [gw.journal.last_seq]

    def on_commit() -> None:
        for event in gw.journal.events_after(last[0], 100):
            last[0] = event.seq
            what = event.detail.get("state") if event.detail and "state" in event.detail else ""
            timeline.say(f"committed  seq={event.seq} {event.type} {event.device or ''} {what}".rstrip())

    gw.journal.add_listener(on_commit)
    return on_commit


async def _watch(gw: Gateway, port: int, timeline: Timeline) -> None:
    import aiomqtt

    base = gw.mqtt.settings.base
    async with aiomqtt.Client("127.0.0.1", port, identifier="demo-watcher") as client:
        await client.subscribe(f"{base}/events", qos=1)
        await client.subscribe(f"{base}/alarm/+", qos=1)
        async for message in client.messages:
            _show(str(message.topic)[len(base) + 1:], message.payload, timeline)


def _show(topic: str, payload: Any, timeline: Timeline) -> None:
    try:
        doc = json.loads(payload)
    except (TypeError, ValueError):
        return
    if topic == "events":
        timeline.say(f"published  events seq={doc['seq']} {doc['type']} {doc.get('device') or ''}")
    elif topic.startswith("alarm/"):
        timeline.say(f"published  alarm {doc.get('code')} state={doc.get('state')}")
