"""``alarm-gateway demo``: the example hospital, with nothing attached, told as a timeline.

An embedded MQTT broker (amqtt, in-process), the gateway on gpiozero's MockFactory with the
example site, the simulated police hotline (HTTP on 127.0.0.1) and the simulated LTE modem
(on a pty). The story: a nurse presses the panic button in the emergency ward; the security
desk does not acknowledge in time; the police get the alarm over HTTP and SMS (shown as
their phone shows it); the police reply ``OK <code>``; the security desk resolves it. Every
step is printed with its time since the press: pressed → committed → published → police.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.config.schema import SiteConfig, validate_config
from gateway.core.errors import GatewayError
from simulator.broker import broker_config, free_port

#: the example site: in a source tree, or where the offline bundle's install.sh puts it
EXAMPLES = (Path(__file__).resolve().parent.parent / "examples" / "site.toml",
            Path(sys.prefix) / "share" / "alarm-gateway" / "examples" / "site.toml")
EXAMPLE = next((p for p in EXAMPLES if p.exists()), EXAMPLES[0])


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
        self.modem: Any = None
        self.hotline: Any = None
        self.after_s = 0
        self._shown_sms = 0

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds / 4 if self.fast else seconds)

    async def wait_alarm(self, accept: Callable[[dict[str, Any]], bool],
                         timeout: float = 10.0) -> dict[str, Any]:
        """The first retained alarm document that ``accept`` takes (bounded wait)."""
        async with asyncio.timeout(timeout):
            while True:
                for doc in self.gw.journal.retained_all("alarm/").values():
                    if isinstance(doc, dict) and accept(doc):
                        return doc
                await asyncio.sleep(0.02)

    async def wait_police(self, code: str, timeout: float = 20.0) -> None:
        """Wait until the hotline and the police phone both have the alarm, then show each
        SMS as the phone shows it."""
        async with asyncio.timeout(timeout):
            while True:
                sms = any(code in m.text for m in self.modem.sent_messages())
                http = any((r.body or {}).get("code") == code for r in self.hotline.deliveries())
                if sms and http:
                    break
                await asyncio.sleep(0.02)
        for message in self.modem.sent_messages()[self._shown_sms:]:
            self.timeline.say(f"police phone {message.number} shows ({message.parts} SMS):")
            for line in message.text.splitlines():
                print(f"{'':16}│ {line}", flush=True)
        self._shown_sms = len(self.modem.sent_messages())

    async def command(self, alarm_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A security desk command, through the same path as MQTT ``alarm/<id>/set``."""
        assert self.gw.command_handler is not None
        raw = json.dumps(payload, ensure_ascii=False).encode()
        return await self.gw.command_handler(alarm_id, raw, "demo")

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


POLICE_PHONE = "+84912000113"  # the ward police hotline mobile of the demo site
GUARD = "Bảo vệ Trần Văn Bình"


async def scene_police(demo: Demo) -> None:
    Timeline.scene("1. A nurse presses the panic button at the emergency desk; nobody at the "
                   f"security desk acknowledges within {demo.after_s} s")
    await demo.press("er-desk-1")
    alarm = await demo.wait_alarm(lambda a: a["state"] == "raised")
    demo.timeline.say(f"alarm {alarm['code']} raised: the desk has {demo.after_s} s "
                      "before the police are called")
    alarm = await demo.wait_alarm(lambda a: a["state"] == "escalated", demo.after_s + 20)
    await demo.wait_police(alarm["code"])
    Timeline.scene(f"2. The ward police reply \"OK {alarm['code']}\" from {POLICE_PHONE}")
    demo.timeline.reset()
    demo.modem.deliver_sms(POLICE_PHONE, f"ok {alarm['code']}")
    await demo.wait_alarm(lambda a: a["state"] == "police_acknowledged", 20)
    Timeline.scene("3. The security desk resolves the alarm")
    demo.timeline.reset()
    note = "Người nhà bệnh nhân đã bình tĩnh; công an phường đã đến."
    answer = await demo.command(alarm["id"], {"action": "resolve", "by": GUARD, "note": note})
    demo.timeline.say(f"resolve by {GUARD}: {'accepted' if answer.get('ok') else answer}")
    done = await demo.wait_alarm(lambda a: a["state"] == "resolved", 10)
    history = " → ".join(f"{h['state']} ({h.get('by') or '-'})" for h in done["history"])
    demo.timeline.say(f"history: {history}")


async def scene_door(demo: Demo) -> None:
    Timeline.scene("4. The back door of the emergency ward opens and closes (no alarm: a door "
                   "contact alarms only where configured)")
    await demo.press("er-door-1", hold_s=0.5)
    await demo.pause(1.0)


SCENES: list[Scene] = [scene_police, scene_door]


def demo_config(folder: Path, port: int, hotline_url: str, modem_port: str,
                after_s: int) -> SiteConfig:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    secret = folder / "hotline.secret"
    secret.write_text("demo-shared-secret\n")
    os.chmod(secret, 0o600)
    raw["mqtt"] = {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": 10}
    raw["storage"] = {"path": str(folder / "var"), "retention_days": 1}
    raw["simulation"] = True
    raw["policy"]["rules"] = [{"ward": "cap-cuu", "kind": "panic_button",
                               "mode": "unacknowledged_after", "after_s": after_s}]
    raw["escalation"] = {
        "http": {"url": hotline_url, "secret_file": str(secret), "timeout_s": 5},
        "sms": {"numbers": [POLICE_PHONE]},
    }
    raw["modem"] = {"port": modem_port, "poll_s": 5}
    return validate_config(raw, base_dir=EXAMPLE.parent)


async def run_demo(fast: bool = False) -> int:
    import logging

    try:
        from amqtt.broker import Broker
    except ImportError as exc:
        raise GatewayError("the demo needs the simulator extra: "
                           "pip install 'ward-alarm-gateway[sim]'") from exc
    from gpiozero.pins.mock import MockFactory

    from simulator.hotline import HotlineServer
    from simulator.modem import ModemSimulator

    logging.getLogger().setLevel(logging.WARNING)  # the timeline is the output
    timeline = Timeline()
    with tempfile.TemporaryDirectory(prefix="alarm-demo-") as tmp:
        port = free_port()
        broker = Broker(broker_config(port))
        await broker.start()
        hotline = HotlineServer(b"demo-shared-secret", on_delivery=_show_http(timeline)).start()
        modem = ModemSimulator()
        modem.start()
        after_s = 4 if fast else 10
        config = demo_config(Path(tmp), port, hotline.url, modem.port, after_s)
        print(f"Ward alarm gateway demo: {config.site.name}")
        print(f"  embedded MQTT broker on 127.0.0.1:{port}; GPIO on MockFactory; police hotline "
              f"simulator at {hotline.url}; LTE modem simulator on {modem.port}")
        factory = MockFactory()
        gw = Gateway(config, simulate=True, pin_factory=factory)
        stop = asyncio.Event()
        gw_task = asyncio.create_task(gw.run(stop))
        try:
            async with asyncio.timeout(15):
                await gw.ready.wait()
                await gw.mqtt.connected.wait()
            subscribed = asyncio.Event()
            watcher = asyncio.create_task(_watch(gw, port, timeline, subscribed))
            async with asyncio.timeout(10):
                await subscribed.wait()
            committed = _print_commits(gw, timeline)
            demo = Demo(gw, factory, timeline, fast)
            demo.modem, demo.hotline, demo.after_s = modem, hotline, after_s
            for scene in SCENES:
                await scene(demo)
            gw.journal.remove_listener(committed)
            watcher.cancel()
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await gw_task
            await broker.shutdown()
            hotline.stop()
            modem.stop()
    print("\nDemo finished: every event was committed to the journal before it was published,"
          " and the police received the alarm once per channel.")
    return 0


def _show_http(timeline: Timeline) -> Callable[[Any], None]:
    def show(request: Any) -> None:
        body = request.body or {}
        timeline.say(f"police hotline: HTTP POST received (signature ok={request.signature_ok}, "
                     f"Idempotency-Key {str(request.idempotency_key)[:8]}…)")
        timeline.say(f"    message: {body.get('message')}")

    return show


def _print_commits(gw: Gateway, timeline: Timeline) -> Callable[[], None]:
    last = [gw.journal.last_seq]

    def on_commit() -> None:
        for event in gw.journal.events_after(last[0], 100):
            last[0] = event.seq
            detail = event.detail or {}
            what = str(detail.get("state", ""))
            if "escalation" in detail:
                what = "→ escalate to the police now"
            elif event.type == "escalation_attempt":
                what = f"{detail.get('channel')} {detail.get('target')}: {detail.get('status')}"
            timeline.say(f"committed  seq={event.seq} {event.type} {event.device or ''} {what}".rstrip())

    gw.journal.add_listener(on_commit)
    return on_commit


async def _watch(gw: Gateway, port: int, timeline: Timeline, subscribed: asyncio.Event) -> None:
    import aiomqtt

    base = gw.mqtt.settings.base
    async with aiomqtt.Client("127.0.0.1", port, identifier="demo-watcher") as client:
        await client.subscribe(f"{base}/events", qos=1)
        await client.subscribe(f"{base}/alarm/+", qos=1)
        subscribed.set()
        async for message in client.messages:
            _show(str(message.topic)[len(base) + 1:], message.payload, timeline)


def _show(topic: str, payload: Any, timeline: Timeline) -> None:
    try:
        doc = json.loads(payload)
    except (TypeError, ValueError):
        return
    if topic == "events":
        timeline.say(f"published  events seq={doc['seq']} {doc['type']} {doc.get('device') or ''}")
    elif topic.startswith("alarm/") and isinstance(doc, dict):
        timeline.say(f"published  alarm {doc.get('code')} state={doc.get('state')}")
