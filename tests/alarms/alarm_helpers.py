"""Helpers for the alarm tests: configs and a fake recorder path around the engine."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import Alarm
from gateway.config.schema import SiteConfig, validate_config
from gateway.core.clock import ManualClock
from gateway.core.events import EventDraft
from gateway.devices.state import DeviceStates


def detail(event: EventDraft) -> dict[str, Any]:
    """An event's detail, which must be there."""
    assert event.detail is not None
    return event.detail


def site_dict(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A two-ward site: er-1 panic, er-2 duress button, door-1 contact (alarm_on_open)."""
    secret = tmp_path / "hotline.secret"
    if not secret.exists():
        secret.write_text("s3cret\n")
        os.chmod(secret, 0o600)
    raw: dict[str, Any] = {
        "site": {"id": "bv-test", "name": "Bệnh viện Thử nghiệm", "short_name": "BV Thử nghiệm"},
        "wards": [{"id": "cap-cuu", "name": "Khoa Cấp cứu", "short_name": "Cấp cứu"},
                  {"id": "kham-benh", "name": "Khoa Khám bệnh", "short_name": "Khám bệnh"}],
        "devices": [
            {"id": "er-1", "ward": "cap-cuu", "room": "101", "pin": 17},
            {"id": "er-2", "ward": "cap-cuu", "room": "102", "pin": 27, "kind": "duress_button"},
            {"id": "door-1", "ward": "kham-benh", "room": "Kho", "pin": 22,
             "kind": "door_contact", "alarm_on_open": True},
            {"id": "door-2", "ward": "kham-benh", "room": "Kho 2", "pin": 23,
             "kind": "door_contact"},
        ] + [{"id": f"b-{i}", "ward": "kham-benh", "room": f"K{i}", "pin": 24 + i}
             for i in range(3)],
        "storage": {"path": str(tmp_path / "var")},
        "escalation": {
            "http": {"url": "http://127.0.0.1:9/alarm", "secret_file": str(secret)},
            "sms": {"numbers": ["+84901111111", "0902222222"]},
        },
        "modem": {"port": "/dev/null"},
    }
    raw.update(sections)
    return raw


def site(tmp_path: Path, **sections: Any) -> SiteConfig:
    return validate_config(site_dict(tmp_path, **sections), base_dir=tmp_path)


class Harness:
    """The engine behind the recorder's processing order (device state first), with
    committed events kept in a list and kv and retained documents persisted in dicts, as
    the journal would."""

    def __init__(self, config: SiteConfig, clock: ManualClock | None = None,
                 kv: dict[str, Any] | None = None, *,
                 retained: dict[str, Any] | None = None) -> None:
        self.config = config
        self.clock = clock or ManualClock()
        self.kv: dict[str, Any] = kv if kv is not None else {}
        self.retained: dict[str, Any] = retained if retained is not None else {}
        self.events: list[EventDraft] = []
        self.leds: list[tuple[str, int]] = []
        counter = itertools.count(1)
        self.devices = DeviceStates(config, self.kv)
        self.engine = AlarmEngine(config, self.clock, dict(self.kv), [self],
                                  new_id=lambda: f"a{next(counter)}-{len(self.kv)}",
                                  documents=dict(self.retained))

    def restart(self, clock: ManualClock | None = None) -> Harness:
        """A new engine over what this one committed, as after a restart of the gateway."""
        return Harness(self.config, clock or self.clock, dict(self.kv),
                       retained=dict(self.retained))

    def set_led(self, device: str, led: int) -> None:
        self.leds.append((device, led))

    def record(self, draft: EventDraft) -> list[EventDraft]:
        """Process like :meth:`Recorder.prepare` and 'commit'; returns the new events."""
        pending, out, after = [draft], [], []
        while pending:
            d = pending.pop(0)
            if d.ts is None:
                d = EventDraft(d.type, d.device, d.value, d.drill, d.alarm_id, d.detail,
                               self.clock.wall())
            for processor in (self.devices, self.engine):
                result = processor.process(d)
                d = result.draft
                self.retained.update(result.retained)
                self.kv.update(result.kv)
                after.extend(result.after_commit)
                pending[0:0] = result.follow_ups
            out.append(d)
        self.events.extend(out)
        for callback in after:
            callback()
        return out

    def fire_timers(self) -> list[EventDraft]:
        out: list[EventDraft] = []
        for draft in self.engine.on_timer(self.clock.monotonic()):
            out.extend(self.record(draft))
        return out

    def alarm(self, alarm_id: str | None) -> Alarm:
        """The engine's alarm, which must exist."""
        found = self.engine.get(alarm_id or "")
        assert found is not None, f"no alarm {alarm_id!r}"
        return found

    def of_type(self, type_: str) -> list[EventDraft]:
        return [e for e in self.events if str(e.type) == type_]

    def plans(self) -> list[dict[str, Any]]:
        return [e.detail["escalation"] for e in self.events
                if e.detail and "escalation" in e.detail]


# -- end to end --------------------------------------------------------------------------

SECRET = b"hotline-test-secret"
POLICE = ["+84901111111", "0902222222"]


def alarm_site(tmp_path: Path, broker_port: int, *, hotline_url: str | None = None,
               modem_port: str | None = None, policy: str = 'default = "immediate"',
               http: str = "", sms: str = "", devices: str | None = None,
               min_interval_s: int = 0) -> Path:
    """A test site (tests/conftest.py ``write_site``) with policy and escalation sections;
    HTTP retries are fast (50 ms base) so retry tests stay short."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("tests_root_conftest", root)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    write_site = module.write_site

    secret = tmp_path / "hotline.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, 0o600)
    extra = f"\n[policy]\n{policy}\n"
    if hotline_url:
        extra += (f'\n[escalation.http]\nurl = "{hotline_url}"\nsecret_file = "{secret}"\n'
                  f"retry_base_s = 0.05\nretry_cap_s = 0.2\n{http}\n")
    if modem_port:
        numbers = ", ".join(f'"{n}"' for n in POLICE)
        extra += (f"\n[escalation.sms]\nnumbers = [{numbers}]\n"
                  f"min_interval_s = {min_interval_s}\n{sms}\n")
        extra += f'\n[modem]\nport = "{modem_port}"\npoll_s = 1\n'
    return write_site(tmp_path, broker_port, extra, devices)


def run_gateway(config_path: Path, body: Any, factory: Any = None, clock: Any = None) -> None:
    """Run an in-process gateway on MockFactory around ``await body(gw, factory)``;
    ``clock`` replaces the system clock (e.g. a SteppedClock)."""
    import asyncio

    from gpiozero.pins.mock import MockFactory

    from gateway.app import Gateway
    from gateway.config.schema import load_config

    async def main() -> None:
        pins = factory or MockFactory()
        gw = Gateway(load_config(config_path), simulate=True, pin_factory=pins, clock=clock)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await asyncio.wait_for(gw.ready.wait(), 10)
        # a stop while the MQTT link is still connecting can hang its shutdown: wait for it
        await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
        try:
            await body(gw, pins)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            pins.reset()

    asyncio.run(main())


async def until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate()`` on the loop until truthy (bounded); its value."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)


async def in_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def journal_events(tmp_path: Path, type_: str | None = None) -> list[dict[str, Any]]:
    import json
    import sqlite3

    conn = sqlite3.connect(tmp_path / "var" / "journal.sqlite3")
    try:
        rows = conn.execute("SELECT body FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    events = [json.loads(r[0]) for r in rows]
    return [e for e in events if type_ is None or e["type"] == type_]
