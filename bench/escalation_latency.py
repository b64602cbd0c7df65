"""Press → police: how long the escalation path takes, in process.

A MockFactory pin is driven from a thread (as lgpio's callbacks come on a Pi) into an
in-process gateway with loopback mosquitto, policy ``immediate``. Measured:

* press → the signed POST as the simulated hotline on 127.0.0.1 has received and checked it
  (HTTP the only channel);
* press → the alarm committed to the journal (as the loop sees the commit): the share of
  the above that is not escalation;
* press → the first ``AT+CMGS`` the simulated modem reads on its pty, with HTTP and SMS
  both configured (``dual``), and press → hotline in that same run.

Alarms are sequential: each is resolved with ``Gateway.command_handler`` (and the resolve
committed) once its deliveries are journaled, before the next press; devices are taken
in turn. The mass-alarm rule never combines them: ``[policy.mass_alarm]`` is set to
``count = 1000`` within ``window_s = 1``, far beyond a sequential rate. The first few
alarms of each run warm up the worker threads and connections and are not counted.

    python -m bench.escalation_latency [--http 500] [--sms 100] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import os
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import figures, machine, mosquitto
from simulator.hotline import HotlineServer, Received
from simulator.modem import ModemSimulator

DEVICES = 8
WARM_UP = 5
SECRET = b"bench-hotline-secret"
POLICE = "+84901111111"

SITE = """
[site]
id = "bench"
name = "Bệnh viện Bench"
[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"
{devices}
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[storage]
path = "{storage}"
[health]
interval_s = 30
[policy]
default = "immediate"
[policy.mass_alarm]
count = 1000
window_s = 1
{escalation}
"""


def site(folder: Path, port: int, hotline_url: str | None, modem_port: str | None) -> Path:
    devices = "".join(
        f'[[devices]]\nid = "b{i}"\nward = "cap-cuu"\nroom = "R{i}"\npin = {i + 2}\n'
        f"bounce_ms = 0\nhold_s = 60\n" for i in range(DEVICES))
    escalation = ""
    if hotline_url:
        secret = folder / "hotline.secret"
        secret.write_bytes(SECRET + b"\n")
        os.chmod(secret, 0o600)
        escalation += f'[escalation.http]\nurl = "{hotline_url}"\nsecret_file = "{secret}"\n'
    if modem_port:
        escalation += (f'[escalation.sms]\nnumbers = ["{POLICE}"]\nmin_interval_s = 0\n'
                       f'[modem]\nport = "{modem_port}"\npoll_s = 30\n')
    path = folder / "site.toml"
    path.write_text(SITE.format(devices=devices, port=port, storage=folder / "var",
                                escalation=escalation), encoding="utf-8")
    return path


@dataclass
class Arrivals:
    """perf_counter time each alarm's first delivery reached the hotline, by alarm id."""

    at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_delivery(self, record: Received) -> None:
        now = time.perf_counter()
        alarm_id = (record.body or {}).get("alarm_id")
        with self.lock:
            self.at.setdefault(str(alarm_id), now)


class Commits:
    """Wakes on every journal commit, so waiting for a state costs no polling."""

    def __init__(self, journal: Any) -> None:
        self.event = asyncio.Event()
        journal.add_listener(self.event.set)

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                self.event.clear()
                value = predicate()
                if value:
                    return value
                await self.event.wait()


def click(pin: Any) -> float:
    """Press and release (no hold follows), from the calling thread; the press time."""
    t0 = time.perf_counter()
    pin.drive_low()
    pin.drive_high()
    return t0


def delivered(alarm: Any) -> bool:
    """Every delivery of the alarm journaled as delivered."""
    return bool(alarm.escalations) and all(
        e.status == "delivered" for e in alarm.escalations)


def first_cmgs_after(sim: ModemSimulator, t0: float) -> float | None:
    return next((t for t, line in sim.command_log()
                 if t >= t0 and line.startswith("AT+CMGS=")), None)


async def _run(config: Path, alarms: int, arrivals: Arrivals | None,
               sim: ModemSimulator | None, *, before: Awaitable[None] | None = None
               ) -> dict[str, list[float]]:
    from gpiozero.pins.mock import MockFactory

    from gateway.app import Gateway
    from gateway.config.schema import load_config

    factory = MockFactory()
    gw = Gateway(load_config(config), simulate=True, pin_factory=factory)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await asyncio.wait_for(gw.ready.wait(), 15)
    await asyncio.wait_for(gw.mqtt.connected.wait(), 15)
    commits = Commits(gw.journal)
    if sim is not None:
        modem = gw.escalation.sms.sender
        async with asyncio.timeout(15):
            while modem.status()["state"] != "ok":  # noqa: ASYNC110 - status has no event
                await asyncio.sleep(0.05)
    if before is not None:
        await before  # e.g. until a load other than the alarms is running
    pins = [factory.pin(i + 2) for i in range(DEVICES)]
    out: dict[str, list[float]] = {"hotline": [], "cmgs": [], "committed": []}
    try:
        for n in range(alarms + WARM_UP):
            t0 = await asyncio.to_thread(click, pins[n % DEVICES])
            [alarm] = await commits.until(gw.alarm_engine.open_alarms)
            committed = time.perf_counter()
            await commits.until(functools.partial(delivered, alarm))
            if n >= WARM_UP:
                out["committed"].append(committed - t0)
                if arrivals is not None:
                    out["hotline"].append(arrivals.at[alarm.id] - t0)
                if sim is not None:
                    sent = first_cmgs_after(sim, t0)
                    assert sent is not None, "no AT+CMGS after the press"
                    out["cmgs"].append(sent - t0)
            assert gw.command_handler is not None
            await gw.command_handler(alarm.id, b'{"action":"resolve","by":"bench"}', "bench")
            await commits.until(lambda: not gw.alarm_engine.open_alarms())
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        factory.reset()
    return out


def run(alarms: int, *, http: bool, sms: bool, profile: str | None = None
        ) -> dict[str, list[float]]:
    arrivals = Arrivals()
    with ExitStack() as stack:
        port = stack.enter_context(mosquitto())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        hotline = HotlineServer(SECRET, on_delivery=arrivals.on_delivery) if http else None
        sim = ModemSimulator() if sms else None
        if hotline is not None:
            hotline.start()
            stack.callback(hotline.stop)
        if sim is not None:
            sim.start()
            stack.callback(sim.stop)
        config = site(folder, port, hotline.url if hotline else None, sim.port if sim else None)
        coro = _run(config, alarms, arrivals if hotline else None, sim)
        if profile is None:
            return asyncio.run(coro)
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(asyncio.run, coro)
        finally:
            profiler.dump_stats(profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, default=500, help="alarms, HTTP only")
    parser.add_argument("--sms", type=int, default=100, help="alarms, HTTP and SMS")
    parser.add_argument("--profile", help="write cProfile stats of the HTTP run here")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("policy immediate; alarms one at a time, each resolved before the next press "
          f"({DEVICES} devices in turn); mass alarm off (count 1000 within 1 s); "
          f"{WARM_UP} warm-up alarms per run not counted")
    if args.http:
        result = run(args.http, http=True, sms=False, profile=args.profile)
        print(figures("press → hotline (HTTP only)", result["hotline"]))
        print(figures("  of which press → alarm committed", result["committed"]), flush=True)
    if args.sms:
        result = run(args.sms, http=True, sms=True)
        print(figures("press → first AT+CMGS at the modem (dual)", result["cmgs"]))
        print(figures("press → hotline (dual)", result["hotline"]))


if __name__ == "__main__":
    main()
