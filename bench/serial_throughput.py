"""Serial bus throughput: SPEC §2 frames on a real pty → parsed, committed, ACKed, published.

The gateway runs as a child process (``python -m gateway.cli run -c FILE``) with a ``[serial]``
section whose port is the slave side of an ``os.openpty()`` pair. This process is the load
generator: it writes valid frames from many node ids (half of them keyed, so their frames
carry a MAC) on the master, reads the gateway's ACKs back from it, and subscribes to the
``events`` topic on a loopback mosquitto. Each node's ``seq`` increases by one per frame and
its frames alternate PRESS / RELEASE.

Phases, in this order:

* frame written → ``events`` message latency at a moderate rate (frames one at a time);
* 115200 baud framing: the writer is paced to the link's byte rate (115200 / 10 bytes/s);
* unthrottled: frames written as fast as the pty takes them.

For each it checks that every frame was ACKed exactly once and its event published, and
reads the gateway process's CPU time (user + system, all threads) from
``/proc/<pid>/stat`` before and after (the figure ``getrusage(RUSAGE_SELF)`` would give
inside the process); the child's whole-life ``wait4`` rusage is printed as a cross-check.

    python -m bench.serial_throughput [--nodes 200] [--unthrottled-frames 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import TimingSubscriber, machine, mosquitto, percentile
from drivers.frames import Frame, FrameType, encode_frame

SITE_ID = "bench"
KEY = bytes(range(32, 48))
LINK_BAUD = 115200
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
CLK_TCK = os.sysconf("SC_CLK_TCK")

SITE = """
[site]
id = "{site}"
name = "Serial bench"
[[wards]]
id = "w"
name = "Ward"
{devices}
[serial]
port = "{serial}"
baud = {baud}
supervision_s = 3600
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[storage]
path = "{storage}"
[health]
interval_s = 60
"""


def node_ids(count: int) -> list[int]:
    """Spread over 1..65535 so the ids have 1 to 5 digits, as on a real site."""
    fixed = [1, 7, 42, 999, 65535]
    rest = [100 + 317 * i for i in range(count - len(fixed))]
    return sorted(set(fixed + rest))[:count]


def keyed(node: int) -> bool:
    return node % 2 == 0


def site(folder: Path, port: int, serial: str, nodes: list[int]) -> Path:
    key = folder / "node.key"
    key.write_text(KEY.hex() + "\n")
    os.chmod(key, 0o600)
    devices = "".join(
        f'[[devices]]\nid = "n{n}"\nward = "w"\nroom = "Bed {n}"\ninput = "serial"\nnode = {n}\n'
        + (f'key_file = "{key}"\n' if keyed(n) else "")
        for n in nodes
    )
    path = folder / "site.toml"
    path.write_text(SITE.format(site=SITE_ID, devices=devices, serial=serial, baud=LINK_BAUD,
                                port=port, storage=folder / "var"))
    return path


# -- frames -----------------------------------------------------------------------------------

class FrameSource:
    """Valid uplink frames, nodes round-robin; per node seq + 1 and PRESS/RELEASE alternating."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes
        self._seq = {n: 0 for n in nodes}
        self._i = 0

    def take(self, count: int) -> list[tuple[int, int, bytes]]:
        """``count`` frames as ``(node, seq, wire bytes)``, encoded before any timing starts."""
        out = []
        for _ in range(count):
            node = self.nodes[self._i % len(self.nodes)]
            self._i += 1
            seq = self._seq[node] = self._seq[node] + 1
            kind = FrameType.PRESS if seq % 2 else FrameType.RELEASE
            batt = 2900 + (node * 7 + seq) % 200  # above low_battery_mv: no low_battery events
            data = encode_frame(Frame(node, seq, kind, 0, batt), KEY if keyed(node) else None)
            out.append((node, seq, data))
        return out


# -- the line: a pty; this process writes on the master, the gateway opens the slave --------

class Line:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline: bytes pass as they are
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.acks: Counter[tuple[int, int]] = Counter()
        self.ack_at: dict[tuple[int, int], float] = {}
        self.states = 0
        self.bad = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        rest = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            now = time.perf_counter()
            *lines, rest = (rest + data).split(b"\n")
            with self._lock:
                for line in lines:
                    parts = line.split(b",", 4)
                    if len(parts) < 5 or not parts[1].isdigit() or not parts[2].isdigit():
                        self.bad += 1
                    elif parts[3] == b"ACK":
                        key = (int(parts[1]), int(parts[2]))
                        self.acks[key] += 1
                        self.ack_at.setdefault(key, now)
                    elif parts[3] == b"STATE":
                        self.states += 1
                    else:
                        self.bad += 1

    def acked(self, keys: list[tuple[int, int]]) -> int:
        with self._lock:
            return sum(1 for k in keys if k in self.acks)

    def write(self, data: bytes, deadline: float) -> None:
        """Write all of ``data``; wait (bounded) while the pty buffer is full."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the gateway stopped reading the serial line") from None
                select.select([], [self.master], [], min(left, 0.1))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


# -- the subscriber side ------------------------------------------------------------------------

class Events:
    """Index of the ``events`` messages by (node, seq) of the frame that caused them."""

    def __init__(self, sub: TimingSubscriber) -> None:
        self.sub = sub
        self.seen = 0
        self.at: dict[tuple[int, int], float] = {}
        self.dupes = 0
        self.other: Counter[str] = Counter()

    def update(self) -> None:
        with self.sub.cond:
            new = self.sub.arrivals[self.seen:]
            self.seen += len(new)
        for t, payload in new:
            event = json.loads(payload)
            detail = event.get("detail") or {}
            if event.get("type") in ("press", "release") and "seq" in detail and "node" in detail:
                key = (int(detail["node"]), int(detail["seq"]))
                if key in self.at:
                    self.dupes += 1
                else:
                    self.at[key] = t
            else:
                self.other[str(event.get("type"))] += 1

    def count(self, keys: list[tuple[int, int]]) -> int:
        self.update()
        return sum(1 for k in keys if k in self.at)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


@dataclass
class Phase:
    name: str
    frames: int = 0
    bytes: int = 0
    first_write: float = 0.0
    last_write: float = 0.0
    last_ack: float = 0.0
    last_event: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0
    acked: int = 0
    acked_twice: int = 0
    published: int = 0
    complete: bool = False
    ack_lat: list[float] = field(default_factory=list)
    event_lat: list[float] = field(default_factory=list)

    @property
    def fps_written(self) -> float:
        return self.frames / max(1e-9, self.last_write - self.first_write)

    @property
    def fps_acked(self) -> float:
        return self.acked / max(1e-9, self.last_ack - self.first_write)

    @property
    def fps_published(self) -> float:
        return self.published / max(1e-9, self.last_event - self.first_write)


def run_phase(name: str, line: Line, events: Events, pid: int, frames: list[tuple[int, int, bytes]],
              *, byte_rate: float | None = None, frame_rate: float | None = None,
              chunk: int = 1, settle_s: float = 60.0) -> Phase:
    """Write ``frames`` paced by ``byte_rate`` (bytes/s) or ``frame_rate`` (frames/s), or as
    fast as the pty takes them in chunks of ``chunk`` frames; then wait (at most
    ``settle_s``) for every ACK and event."""
    ph = Phase(name, frames=len(frames), bytes=sum(len(f[2]) for f in frames))
    keys = [(n, s) for n, s, _ in frames]
    written: dict[tuple[int, int], float] = {}
    cpu0, wall0 = cpu_s(pid), time.perf_counter()
    deadline = time.monotonic() + settle_s + 10 * len(frames) / (frame_rate or byte_rate or 1e9)
    t0 = time.perf_counter()
    ph.first_write = t0
    sent_bytes = 0
    for i in range(0, len(frames), chunk):
        group = frames[i:i + chunk]
        data = b"".join(f[2] for f in group)
        if byte_rate is not None:
            due = t0 + sent_bytes / byte_rate
        elif frame_rate is not None:
            due = t0 + i / frame_rate
        else:
            due = 0.0
        ahead = due - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        now = time.perf_counter()
        for n, s, _ in group:
            written[(n, s)] = now
        line.write(data, deadline)
        sent_bytes += len(data)
    ph.last_write = time.perf_counter()
    while time.monotonic() < deadline:
        if line.acked(keys) == len(keys) and events.count(keys) == len(keys):
            ph.complete = True
            break
        time.sleep(0.002)
    ph.cpu = cpu_s(pid) - cpu0
    ph.wall = time.perf_counter() - wall0
    events.update()
    with line._lock:
        acks = [line.ack_at[k] for k in keys if k in line.ack_at]
        ph.acked = len(acks)
        ph.acked_twice = sum(1 for k in keys if line.acks[k] > 1)
        ph.ack_lat = [line.ack_at[k] - written[k] for k in keys if k in line.ack_at]
    got = [events.at[k] for k in keys if k in events.at]
    ph.published = len(got)
    ph.event_lat = [events.at[k] - written[k] for k in keys if k in events.at]
    ph.last_ack = max(acks, default=ph.first_write)
    ph.last_event = max(got, default=ph.first_write)
    return ph


def report(ph: Phase) -> None:
    lost_ack, lost_ev = ph.frames - ph.acked, ph.frames - ph.published
    print(f"  {ph.name}: {ph.frames} frames, {ph.bytes} bytes; written at {ph.fps_written:,.0f}/s, "
          f"ACKed at {ph.fps_acked:,.0f}/s, events published at {ph.fps_published:,.0f}/s")
    print(f"    gateway CPU {ph.cpu:.2f} s over {ph.wall:.1f} s = {1000 * ph.cpu / ph.frames:.3f} s "
          f"per 1000 frames, {100 * ph.cpu / ph.wall:.1f} % of one core")
    al, el = [x * 1000 for x in ph.ack_lat], [x * 1000 for x in ph.event_lat]
    print(f"    frame → ACK p50 {percentile(al, 50):.2f} ms p99 {percentile(al, 99):.2f} ms; "
          f"frame → events message p50 {percentile(el, 50):.2f} ms p99 {percentile(el, 99):.2f} ms "
          f"max {max(el, default=float('nan')):.2f} ms")
    verdict = "zero loss" if ph.complete and not ph.acked_twice else "LOSS"
    print(f"    {verdict}: not ACKed {lost_ack}, ACKed twice {ph.acked_twice}, "
          f"event not published {lost_ev}", flush=True)


def profiler(pid: int, args: argparse.Namespace, phase: str) -> subprocess.Popen[bytes] | None:
    return start_profiler(pid, args.py_spy) if args.py_spy and args.profile_phase == phase else None


def start_profiler(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``) sampling the gateway thread that holds the GIL (Python
    CPU; time in fsync, select and other calls that release it is not sampled)."""
    exe = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", "250", "--threads",
                             "--gil", "--format", "raw", "--output", out, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(spy: subprocess.Popen[bytes], out: str, top: int = 25) -> None:
    """Stop py-spy (it writes on SIGINT) and print the functions with the most samples."""
    import signal

    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(20)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(5)
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for row in Path(out).read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";")[2:] if f]  # drop the process and thread names
        n = int(count)
        samples += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    print(f"  py-spy: {samples} samples holding the GIL; most inclusive, then most own:")
    for name, counter in (("incl", total), ("own", own)):
        for f, n in counter.most_common(top):
            print(f"    {name} {100 * n / max(1, samples):5.1f} %  {f}")


def wait_port_open(line: Line, frame: tuple[int, int, bytes], within_s: float = 30.0) -> None:
    """Send one node's first frame every 0.1 s (as a node retransmits) until it is ACKed:
    opening the port flushes what was written before, so nothing is timed until then."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        line.write(frame[2], deadline)
        time.sleep(0.1)
        if line.acked([frame[:2]]):
            return
    raise RuntimeError("the gateway did not open the serial port")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--latency-frames", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=100.0, help="frames/s")
    parser.add_argument("--throttled-s", type=float, default=20.0)
    parser.add_argument("--unthrottled-frames", type=int, default=20000)
    parser.add_argument("--chunk", type=int, default=32, help="frames per write when unthrottled")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="sample the gateway with py-spy (raw output to FILE) during one phase")
    parser.add_argument("--profile-phase", choices=("throttled", "unthrottled"), default="unthrottled")
    args = parser.parse_args()
    nodes = node_ids(args.nodes)
    source = FrameSource(nodes)
    unkeyed_len = len(FrameSource([nodes[0]]).take(1)[0][2])
    sample = FrameSource(nodes).take(len(nodes) * 4)
    mean_len = sum(len(f[2]) for f in sample) / len(sample)
    byte_rate = LINK_BAUD / BITS_PER_BYTE
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{len(nodes)} nodes ({sum(map(keyed, nodes))} keyed); frames {min(len(f[2]) for f in sample)}"
          f"..{max(len(f[2]) for f in sample)} bytes, mean {mean_len:.1f} (node {nodes[0]} unkeyed: {unkeyed_len})")
    print(f"link limit at {LINK_BAUD} baud 8N1: {byte_rate:.0f} bytes/s ÷ {mean_len:.1f} = "
          f"{byte_rate / mean_len:.0f} frames/s; at 1 Mbaud: {1e6 / BITS_PER_BYTE / mean_len:.0f} frames/s",
          flush=True)
    with mosquitto() as port, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        line = Line()
        config = site(folder, port, line.path, nodes)
        sub = TimingSubscriber(port, f"alarmgw/{SITE_ID}/events")
        status = TimingSubscriber(port, f"alarmgw/{SITE_ID}/gateway/status")
        events = Events(sub)
        log = (folder / "gateway.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(config)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(p == b"online" for _, p in status.arrivals):
                if proc.poll() is not None:
                    raise RuntimeError("the gateway exited")
                time.sleep(0.01)
            wait_port_open(line, source.take(1)[0])
            warm = run_phase("warm-up (first frame of each node)", line, events, proc.pid,
                             source.take(len(nodes) - 1), frame_rate=200)
            if not warm.complete:
                report(warm)
                raise RuntimeError("warm-up frames were not all ACKed and published")
            time.sleep(2)
            idle0, t_idle = cpu_s(proc.pid), time.perf_counter()
            time.sleep(3)
            idle = (cpu_s(proc.pid) - idle0) / (time.perf_counter() - t_idle)
            print(f"gateway idle CPU: {100 * idle:.1f} % of one core", flush=True)

            lat = run_phase(f"latency, {args.latency_rate:.0f} frames/s one at a time", line, events,
                            proc.pid, source.take(args.latency_frames), frame_rate=args.latency_rate)
            report(lat)
            n_thr = int(args.throttled_s * byte_rate / mean_len)
            spy = profiler(proc.pid, args, "throttled")
            thr = run_phase(f"{LINK_BAUD} baud framing (paced to {byte_rate:.0f} bytes/s)", line,
                            events, proc.pid, source.take(n_thr), byte_rate=byte_rate)
            report(thr)
            if spy is not None:
                stop_profiler(spy, args.py_spy)
            spy = profiler(proc.pid, args, "unthrottled")
            unt = run_phase("unthrottled", line, events, proc.pid, source.take(args.unthrottled_frames),
                            chunk=args.chunk, settle_s=120)
            report(unt)
            if spy is not None:
                stop_profiler(spy, args.py_spy)
            print(f"events topic, other types (alarms, device state ...): {dict(events.other)}; "
                  f"duplicate press/release messages: {events.dupes}; STATE frames read: {line.states}")
        finally:
            proc.terminate()
            _, code, usage = os.wait4(proc.pid, 0)
            log.close()
            sub.stop()
            status.stop()
            line.close()
            print(f"gateway exit {code}; whole life CPU (wait4): user {usage.ru_utime:.2f} s, "
                  f"system {usage.ru_stime:.2f} s, max RSS {usage.ru_maxrss / 1024:.0f} MiB")
            text = (folder / "gateway.log").read_text(errors="replace")
            errors = [x for x in text.splitlines() if "ERROR" in x or "Traceback" in x]
            if errors:
                print("gateway log errors:", *errors[:10], sep="\n  ")


if __name__ == "__main__":
    main()
