"""Many hospitals into one police receiver: N sites × R alarms/s for S seconds.

Each simulated site POSTs signed alarms on its own schedule (the sites start spread over the
first second); one POST in ten is sent twice, as a gateway retry would. Afterwards the
receiver's journal must hold every alarm exactly once. Prints p50/p99/max POST latency,
the receiver's RSS (idle, end, peak) and CPU.

    python -m bench.receiver_load [--sites 50] [--rate 1] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.receiver_common import (
    alarm,
    free_port,
    percentile,
    receiver_process,
    rss_mib,
    site_secret,
    write_receiver_config,
)
from gateway.escalation.wire import signed_headers


async def _site(session: aiohttp.ClientSession, base: str, site: int, rate: float,
                seconds: float, latencies: list[float], sent: set[str], errors: list[str]
                ) -> None:
    secret = site_secret(site)
    await asyncio.sleep(random.random() / rate)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        request = alarm(site, n)
        body = request.to_body()
        for _ in range(2 if random.random() < 0.1 else 1):
            headers = signed_headers(secret, request.escalation_id, body, int(time.time()))
            t0 = time.perf_counter()
            async with session.post(f"{base}/v1/alarms", data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors.append(f"{resp.status}")
            latencies.append(time.perf_counter() - t0)
        sent.add(request.escalation_id)
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))


async def _load(base: str, sites: int, rate: float, seconds: float
                ) -> tuple[list[float], set[str], list[str]]:
    latencies: list[float] = []
    sent: set[str] = set()
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(_site(session, base, i, rate, seconds, latencies, sent, errors)
                               for i in range(sites)))
    return latencies, sent, errors


def _stored(db: Path) -> tuple[int, int, set[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        alarms = conn.execute("SELECT COUNT(*) FROM alarms").fetchone()[0]
        received = conn.execute("SELECT COUNT(*) FROM events WHERE type='alarm_received'"
                                ).fetchone()[0]
        keys = {k for (k,) in conn.execute("SELECT key FROM deliveries")}
    finally:
        conn.close()
    return int(alarms), int(received), keys


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1.0, help="alarms/s per site")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = write_receiver_config(Path(tmp), args.sites, port)
        with receiver_process(config, port) as proc:
            time.sleep(1.0)
            idle = rss_mib(proc.pid)
            cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
            latencies, sent, errors = asyncio.run(
                _load(f"http://127.0.0.1:{port}", args.sites, args.rate, args.seconds))
            cpu = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
            end, peak = rss_mib(proc.pid), rss_mib(proc.pid, "VmHWM")
        alarms, received, keys = _stored(Path(tmp) / "var" / "receiver.sqlite3")
    lost, extra = len(sent - keys), len(keys - sent)
    ms = [x * 1000 for x in latencies]
    print(f"sites {args.sites} × {args.rate:g} alarm/s × {args.seconds:g} s: "
          f"{len(sent)} alarms, {len(latencies)} POSTs (retries included), {len(errors)} non-200")
    print(f"stored: {alarms} alarms, {received} alarm_received events; lost {lost}, "
          f"unknown {extra}, duplicated {received - len(keys)}")
    print(f"POST latency ms: p50 {percentile(ms, 50):.2f}  p99 {percentile(ms, 99):.2f}  "
          f"max {max(ms):.2f}")
    print(f"receiver RSS MiB: idle {idle:.1f}  end {end:.1f}  peak {peak:.1f}; "
          f"CPU {cpu * 100:.0f} % of a core")
    if lost or extra or errors or alarms != len(sent) or received != len(sent):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
