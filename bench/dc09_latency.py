"""Press → ACK from an alarm receiving centre over DC-09, in process, on loopback.

Like :mod:`bench.escalation_latency` (same site, MockFactory pins driven from a thread, a
loopback mosquitto, policy ``immediate``, alarms one at a time, each resolved before the
next press), with a DC-09 centre the only channel: the simulated ARC (pysiaalarm's parsing
behind our listener) on 127.0.0.1. Measured:

* press → the centre has accepted the ``SIA-DCS`` message (its arrival, wall clock);
* press → the gateway has the centre's ``ACK`` and has journaled the delivery (the
  ``escalation_attempt`` committed, as the loop sees it).

Plain and AES-256, separately. The resolve of each alarm sends its restore (``PR``) too,
which is waited for before the next press so one alarm's restore never queues ahead of the
next alarm's message.

    python -m bench.dc09_latency [--alarms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import figures, machine, mosquitto
from bench.escalation_latency import DEVICES, WARM_UP, Commits, click, delivered, site
from receiver.dc09 import PanelAccount
from simulator.arc import ArcServer

ACCOUNT = "B3C4"
KEY = b"0123456789ABCDEF0123456789ABCDEF"


def dc09_site(folder: Path, port: int, arc_port: int, key: bytes | None) -> Path:
    path = site(folder, port, None, None)
    key_line = ""
    if key is not None:
        key_file = folder / "arc.key"
        key_file.write_bytes(key + b"\n")
        os.chmod(key_file, 0o600)
        key_line = f'key_file = "{key_file}"\n'
    path.write_text(path.read_text(encoding="utf-8") + f"""
[escalation.dc09]
report_events = false
[[escalation.dc09.receivers]]
name = "arc"
host = "127.0.0.1"
port = {arc_port}
account = "{ACCOUNT}"
link_test_s = 0
{key_line}""", encoding="utf-8")
    return path


async def _run(config: Path, arc: ArcServer, alarms: int) -> dict[str, list[float]]:
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
    pins = [factory.pin(i + 2) for i in range(DEVICES)]
    out: dict[str, list[float]] = {"ack": [], "arc": []}
    try:
        for n in range(alarms + WARM_UP):
            wall0 = time.time()
            t0 = await asyncio.to_thread(click, pins[n % DEVICES])
            [alarm] = await commits.until(gw.alarm_engine.open_alarms)
            await commits.until(functools.partial(delivered, alarm))
            acked = time.perf_counter()
            if n >= WARM_UP:
                out["ack"].append(acked - t0)
                arrival = next(a for a in reversed(arc.arrivals())
                               if a.message is not None and a.message.code == "PA")
                out["arc"].append(arrival.at - wall0)
            assert gw.command_handler is not None
            await gw.command_handler(alarm.id, b'{"action":"resolve","by":"bench"}', "bench")
            await asyncio.to_thread(arc.wait_for, functools.partial(_restored, n + 1), 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        factory.reset()
    return out


def _restored(count: int, arrivals: list[Any]) -> bool:
    return sum(1 for a in arrivals if a.message is not None and a.message.code == "PR") >= count


def run(alarms: int, key: bytes | None) -> dict[str, list[float]]:
    with ExitStack() as stack:
        port = stack.enter_context(mosquitto())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        arc = stack.enter_context(ArcServer([PanelAccount(account=ACCOUNT, site="bench",
                                                          key=key)]))
        return asyncio.run(_run(dc09_site(folder, port, arc.port, key), arc, alarms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=300, help="alarms per run")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"policy immediate; DC-09 the only channel; alarms one at a time, each resolved "
          f"(and its PR acknowledged) before the next press; {WARM_UP} warm-up alarms per "
          "run not counted")
    for label, key in (("plain", None), ("AES-256", KEY)):
        result = run(args.alarms, key)
        print(figures(f"press → ACK journaled ({label})", result["ack"]))
        print(figures(f"  press → accepted at the centre ({label})", result["arc"]),
              flush=True)


if __name__ == "__main__":
    main()
