"""What one event costs the Pi: CPU per event, bytes written per event, memory.

The gateway runs as a child process (``bench.side_by_side``'s gateway driver: MockFactory
GPIO and a serial bus on a pty) against a loopback mosquitto. Around each phase the bench
reads the child's ``/proc/<pid>/stat`` (user + system CPU time) and ``/proc/<pid>/io``
(``write_bytes``: what reached the block layer, WAL and checkpoints included), so the figures
are the gateway's own, whatever else the machine is doing:

- GPIO press + release, one at a time (each waited for at the subscriber);
- serial PRESS/RELEASE frames, one at a time (each waited for at the subscriber and its ACK);
- serial frames at the link limit (115200 baud: 281 frames/s of 41 bytes) for a few seconds;
- heartbeats (``HB``, answered with ``STATE``), one per node, over a quiet period;
- idle: nothing at all, for the same period (the health reports, the cursor flushes).

From these it projects the MiB written per day for a site of 100 nodes with a heartbeat
every 60 s and 200 presses a day. Run:

    python -m bench.pi_budget [--presses 200] [--frames 300] [--quiet-s 65]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import machine, rss_mib
from bench.side_by_side import (
    GW,
    NODES,
    PINS,
    Broker,
    Frames,
    Result,
    SerialLine,
    Subscriber,
    Tool,
    gateway_site,
    sequential_gpio,
    sequential_serial,
)

LINK_FRAMES_PER_S = 281  # 115200 baud, 10 bits a byte, 41-byte frames
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """A child's cumulative CPU seconds and bytes written, read at one moment."""

    cpu_s: float
    written: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / CLK_TCK  # utime, stime
        io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        return cls(cpu, int(io["write_bytes"]))

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu_s - other.cpu_s, self.written - other.written)


def _settle(pid: int) -> None:
    """Let the last phase's cursor flush (Subscription.flush_s, 2 s) land before a reading."""
    time.sleep(2.5)


def _heartbeats(line: SerialLine, frames: Frames) -> int:
    from drivers.frames import Frame, FrameType, encode_frame

    for node in NODES:
        frames.seq[node] = frames.seq[node] % 65535 + 1
        line.write(encode_frame(Frame(node, frames.seq[node], FrameType.HB, 3600, 3000)))
    return len(NODES)


def _link_rate(line: SerialLine, frames: Frames, seconds: float) -> int:
    total = int(LINK_FRAMES_PER_S * seconds)
    t0 = time.perf_counter()
    for i in range(total):
        line.write(frames.next()[2])
        ahead = t0 + (i + 1) / LINK_FRAMES_PER_S - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=200, help="GPIO press + release pairs")
    parser.add_argument("--frames", type=int, default=300, help="serial frames one at a time")
    parser.add_argument("--link-s", type=float, default=5.0, help="seconds at the link limit")
    parser.add_argument("--quiet-s", type=float, default=65.0,
                        help="the heartbeat and idle periods (a heartbeat per node in each)")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = Broker(tmp)
        broker.start()
        sub = Subscriber(broker.port)
        line = SerialLine()
        frames = Frames(NODES)
        folder = tmp / "gateway"
        folder.mkdir()
        config = gateway_site(folder, broker.port, line.path)
        tool = Tool(GW, [sys.executable, "-m", "bench.side_by_side", "--gateway-driver",
                         str(config)], tmp / "gateway.log")
        try:
            rows = _measure(tool, sub, line, frames, args)
        finally:
            tool.close()
            line.close()
            sub.stop()
            broker.stop()
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _measure(tool: Tool, sub: Subscriber, line: SerialLine, frames: Frames,
             args: argparse.Namespace) -> list[tuple[str, str]]:
    pid = tool.pid
    rows: list[tuple[str, str]] = []
    time.sleep(3)
    idle_rss = rss_mib(pid)[0]
    rows.append(("RSS idle", f"{idle_rss:.1f} MiB"))
    for low in (True, False):  # warm-up
        tool.request({"op": "drive", "pin": PINS[0], "low": low})
    sub.settle((GW, "gpio"), 0.5, 10)
    _settle(pid)

    before = Usage.of(pid)
    res = Result(GW)
    sequential_gpio(tool, sub, args.presses, res, gap=0.0)
    _settle(pid)
    used = Usage.of(pid) - before
    events = 2 * args.presses
    rows.append(("GPIO: CPU per event", f"{used.cpu_s * 1000 / events:.2f} ms "
                 f"({events} events, {res.gpio_lost} lost)"))
    rows.append(("GPIO: written per press + release",
                 f"{used.written / args.presses / 1024:.1f} KiB"))
    press_bytes = used.written / args.presses

    before = Usage.of(pid)
    res = Result(GW)
    sequential_serial(tool, sub, line, frames, args.frames, res)
    _settle(pid)
    used = Usage.of(pid) - before
    rows.append(("serial one at a time: CPU per frame",
                 f"{used.cpu_s * 1000 / args.frames:.2f} ms ({res.serial_lost} lost)"))
    rows.append(("serial one at a time: written per frame",
                 f"{used.written / args.frames / 1024:.1f} KiB"))

    start = sub.count((GW, "serial"))
    before = Usage.of(pid)
    t0 = time.perf_counter()
    sent = _link_rate(line, frames, args.link_s)
    sub.wait_count((GW, "serial"), start + sent, 30)
    elapsed = time.perf_counter() - t0
    got = sub.count((GW, "serial")) - start
    used = Usage.of(pid) - before
    rows.append((f"serial at the link limit ({LINK_FRAMES_PER_S}/s)",
                 f"CPU {used.cpu_s * 1000 / sent:.2f} ms per frame, "
                 f"{100 * used.cpu_s / elapsed:.0f} % of a core, {got}/{sent} published, "
                 f"{used.written / sent / 1024:.1f} KiB written per frame"))
    rows.append(("RSS peak", f"{rss_mib(pid)[1]:.1f} MiB"))
    _settle(pid)

    before = Usage.of(pid)
    beats = _heartbeats(line, frames)
    time.sleep(args.quiet_s)
    used_hb = Usage.of(pid) - before
    before = Usage.of(pid)
    time.sleep(args.quiet_s)
    used_idle = Usage.of(pid) - before
    per_beat = max(0, used_hb.written - used_idle.written) / beats
    rows.append((f"heartbeats ({beats} over {args.quiet_s:g} s)",
                 f"{used_hb.written / 1024:.1f} KiB in all, "
                 f"{per_beat / 1024:.2f} KiB per heartbeat beyond idle"))
    idle_per_day = used_idle.written / args.quiet_s * 86400
    rows.append((f"idle ({args.quiet_s:g} s)", f"{used_idle.written / 1024:.1f} KiB, "
                 f"CPU {100 * used_idle.cpu_s / args.quiet_s:.2f} % of a core"))
    day = idle_per_day + 100 * 1440 * per_beat + 200 * press_bytes
    rows.append(("projected, 100 nodes (HB every 60 s), 200 presses a day",
                 f"{day / 2**20:.1f} MiB/day"))
    return rows


if __name__ == "__main__":
    main()
