"""Press → police while the console is flooded with wrong logins.

The same in-process gateway and sequential alarms as :mod:`bench.escalation_latency`
(policy ``immediate``, loopback mosquitto, the simulated hotline on 127.0.0.1, HTTP only),
with the console enabled and one operator whose password has a production argon2id hash
(argon2-cffi's defaults). Two runs:

* quiet: nobody logs in;
* flood: a separate process keeps ``--logins`` (300) wrong logins in flight at once for
  the whole run, each answered one is sent again at once.

Printed per run: press → hotline p50/p99/max, and for the flood the answers the console
gave (401 wrong password, 429 wait, 503 busy). The flood must not reach the alarm path:
password checks run on the console's own bounded pool, the hotline POSTs on the channel's
own threads, registry writes on the serial bus's own thread (none of them asyncio's
default pool), and the throttle counts each attempt before its password is checked.

    python -m bench.login_flood [--alarms 200] [--logins 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from argon2 import PasswordHasher

from bench.common import figures, free_port, machine, mosquitto, percentile
from bench.escalation_latency import Arrivals, _run, site
from simulator.hotline import HotlineServer

SECRET = b"bench-hotline-secret"
OPERATOR = "bao-ve"


def console_section(port: int) -> str:
    return (f'[console]\nlisten = "127.0.0.1:{port}"\n'
            f'[[console.users]]\nname = "{OPERATOR}"\n'
            f'password_hash = "{PasswordHasher().hash("mat-khau-dung-dai-du")}"\n')


def run(alarms: int, logins: int, pauses: Pauses
        ) -> tuple[list[float], Counter[str]]:
    """Press → hotline seconds per alarm; the flood's answers by status (empty: no flood)."""
    arrivals = Arrivals()
    with ExitStack() as stack:
        mqtt_port = stack.enter_context(mosquitto())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        hotline = HotlineServer(SECRET, on_delivery=arrivals.on_delivery)
        hotline.start()
        stack.callback(hotline.stop)
        config = site(folder, mqtt_port, hotline.url, None)
        console_port = free_port()
        with config.open("a", encoding="utf-8") as f:
            f.write(console_section(console_port))
        flood = None
        if logins:
            flood = subprocess.Popen(
                [sys.executable, "-m", "bench.login_flood", "--flood-client",
                 f"http://127.0.0.1:{console_port}", "--logins", str(logins)],
                stdout=subprocess.PIPE, text=True)
        try:
            result = asyncio.run(_run(config, alarms, arrivals, None, before=(
                _wait_for_flood(console_port, pauses))))
        finally:
            gc.unfreeze()
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(pauses.on_gc)
            answers: Counter[str] = Counter()
            if flood is not None:
                flood.send_signal(signal.SIGINT)
                out, _ = flood.communicate(timeout=30)
                answers.update(json.loads(out.strip().splitlines()[-1] or "{}"))
        return result["hotline"], answers


class Pauses:
    """The event loop's longest lateness (a 10 ms tick) and Python's garbage-collector pauses
    during a run: where a slow alarm's time went."""

    def __init__(self) -> None:
        self.loop_late_ms: list[float] = []
        self.gc_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_start = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_ms[info["generation"]].append((time.perf_counter() - self._gc_start) * 1000)

    async def probe(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            self.loop_late_ms.append((time.perf_counter() - t0) * 1000 - 10)

    def summary(self) -> str:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        late = sorted(self.loop_late_ms) or [0.0]
        gcs = ", ".join(f"gen{g} × {len(v)} max {max(v, default=0):.1f} ms"
                        for g, v in self.gc_ms.items())
        return (f"event loop late: p99 {percentile(late, 99):.1f} ms, max {late[-1]:.1f} ms; "
                f"garbage collections: {gcs}; load average {load}")


async def _wait_for_flood(port: int, pauses: Pauses | None = None) -> None:
    """Wait until the console answers and the flood client has had a few seconds to fill
    every pool it can reach; then start watching the loop."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    gc.collect()
    gc.freeze()  # as alarm-gateway run does once the gateway is ready
    if pauses is not None:
        gc.callbacks.append(pauses.on_gc)
        asyncio.get_running_loop().create_task(pauses.probe())


async def flood_client(url: str, logins: int) -> Counter[str]:
    """Keep ``logins`` wrong logins in flight until SIGINT; the answers by status."""
    import aiohttp

    answers: Counter[str] = Counter()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    body = {"name": OPERATOR, "password": "sai-mat-khau"}
    connector = aiohttp.TCPConnector(limit=logins)
    timeout = aiohttp.ClientTimeout(total=60)

    async def one(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            try:
                async with session.post(url + "/api/login", json=body) as res:
                    await res.read()
                    answers[str(res.status)] += 1
            except (aiohttp.ClientError, TimeoutError):
                answers["error"] += 1
                await asyncio.sleep(0.1)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(logins)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--logins", type=int, default=300, help="wrong logins in flight")
    parser.add_argument("--flood-client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_client:
        answers = asyncio.run(flood_client(args.flood_client, args.logins))
        print(json.dumps(dict(answers)), flush=True)
        return
    print(f"machine: {machine()}")
    print("policy immediate, HTTP only; alarms one at a time, each resolved before the next "
          "press; console on with one operator (production argon2id hash)")
    pauses = Pauses()
    quiet, _ = run(args.alarms, 0, pauses)
    print(figures("press → hotline, no logins", quiet))
    print("  " + pauses.summary(), flush=True)
    pauses = Pauses()
    flooded, answers = run(args.alarms, args.logins, pauses)
    print(figures(f"press → hotline, {args.logins} wrong logins in flight", flooded))
    print("  " + pauses.summary())
    print("console answers during the flood: " + ", ".join(
        f"{k} × {v}" for k, v in sorted(answers.items())))
    ratio = percentile(flooded, 99) / percentile(quiet, 99)
    print(f"p99 flood / p99 quiet: {ratio:.2f} (target ≤ 2)")


if __name__ == "__main__":
    main()
