"""This gateway and mqtt-io on the same jobs, on the same machine, in one run.

Jobs: (a) a GPIO input driven through each tool's mock input (gpiozero's MockFactory, pins
driven from a thread inside the tool's own process), (b) a line written on a serial port (a
pty) → a message at an MQTT subscriber. One loopback mosquitto, one subscriber (in this
process), one tool at a time. mqtt-io is installed from PyPI into a throwaway virtualenv under
a temp dir. See docs/benchmarks.md for the method and how to read the table.

    python -m bench.side_by_side [--presses 300] [--frames 300] [--seconds 2]
                                 [--mqttio-venv DIR]   # reuse a venv that has mqtt-io
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pty
import pwd
import queue
import random
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from bench.common import free_port, machine, percentile, rss_mib

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
PINS = list(range(2, 28))  # GPIO 2..27 of the mock board
NODES = list(range(1, 27))  # serial node ids
SITE_ID = "sbs"
GW_BASE = f"alarmgw/{SITE_ID}"
MQTTIO_PREFIX = "mqttio-bench"
GPIO_RATES = [50, 100, 250, 500, 1000, 2500, 5000]  # presses/s, each = 2 events
SERIAL_RATES = [50, 100, 250, 500, 1000, 2500, 5000, 10000]  # frames/s
OUTAGE_PRESSES = 20  # → 40 GPIO events
OUTAGE_FRAMES = 40
OUTAGE_WAIT_S = 20  # after the restart, for everything to arrive
MAX_DRAIN_S = 1.0  # a rate step whose last event arrives later than this is a backlog
JITTER_S = 0.02  # random gap before each one-at-a-time input
POLL_INTERVAL = 0.1  # mqtt-io digital input poll_interval: its default
READ_INTERVAL = 0.01  # mqtt-io stream read_interval: its minimum (default 60 s)

GW = "gateway"
MQ = "mqtt-io"


# -- the broker: one mosquitto that can be stopped and started again on the same port ---------

class Broker:
    """Loopback mosquitto with persistence, so the subscriber's session (and the QoS 0
    messages queued for it, ``queue_qos0_messages``) survives a stop/start: any loss in the
    outage test is then the publisher's, not the subscriber's."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.folder = folder
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {folder}/\n"
            # run as root, mosquitto would switch to the user "mosquitto", which cannot
            # write the persistence file in our private temp dir
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
            "max_queued_messages 100000\nqueue_qos0_messages true\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def version(self) -> str:
        try:
            out = subprocess.run([self.binary, "-h"], capture_output=True, text=True, timeout=5)
            return (out.stdout or out.stderr).splitlines()[0].replace("mosquitto version ", "")
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"


# -- the subscriber: both tools' topics, normalised into per-(tool, job) buckets --------------

class Subscriber:
    """Persistent-session QoS 1 subscriber. Each arrival is stamped with
    ``time.perf_counter()`` (CLOCK_MONOTONIC: comparable with the drivers' stamps).

    Buckets hold ``(t, item)``: for GPIO ``(pin, "press"|"release", journal_seq, id)``, for
    serial from the gateway ``(node, "press"|"release", journal_seq, id)``, for serial from
    mqtt-io the line's bytes (its stream payloads are whatever one read returned, so lines
    are reassembled across payloads)."""

    def __init__(self, port: int) -> None:
        self.buckets: dict[tuple[str, str], list[tuple[float, Any]]] = defaultdict(list)
        self.cond = threading.Condition()
        self._partial = b""
        self.stream_messages = 0  # mqtt-io stream payloads (each holds what one read got)
        self.topics = [f"{GW_BASE}/events", f"{MQTTIO_PREFIX}/input/+", f"{MQTTIO_PREFIX}/stream/bus"]
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}",
                                  clean_session=False)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.subscribed = threading.Event()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("subscriber could not subscribe")

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe([(t, 1) for t in self.topics])
        self.subscribed.set()

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        topic, payload = msg.topic, msg.payload
        with self.cond:
            if topic == self.topics[0]:
                try:
                    ev = json.loads(payload)
                except ValueError:
                    return
                kind, dev = ev.get("type"), str(ev.get("device") or "")
                if kind in ("press", "release") and dev[:1] in ("g", "n") and dev[1:].isdigit():
                    job = "gpio" if dev[0] == "g" else "serial"
                    self.buckets[(GW, job)].append((now, (int(dev[1:]), kind, ev.get("seq"), ev.get("id"))))
            elif topic.startswith(f"{MQTTIO_PREFIX}/input/in"):
                pin = int(topic.rsplit("/in", 1)[1])
                kind = "press" if payload == b"ON" else "release"
                self.buckets[(MQ, "gpio")].append((now, (pin, kind, None, None)))
            elif topic == self.topics[2]:
                self.stream_messages += 1
                *lines, self._partial = (self._partial + payload).split(b"\n")
                for line in lines:
                    self.buckets[(MQ, "serial")].append((now, line + b"\n"))
            self.cond.notify_all()

    def count(self, key: tuple[str, str]) -> int:
        with self.cond:
            return len(self.buckets[key])

    def items(self, key: tuple[str, str], start: int) -> list[tuple[float, Any]]:
        with self.cond:
            return list(self.buckets[key][start:])

    def wait_count(self, key: tuple[str, str], count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.buckets[key]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def settle(self, key: tuple[str, str], quiet: float = 1.0, limit: float = 20.0) -> None:
        """Wait until nothing new arrived for ``quiet`` s (at most ``limit`` s)."""
        deadline = time.monotonic() + limit
        last = self.count(key)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.count(key)
            if now == last:
                return
            last = now

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# -- the serial line: a pty; the bench writes on the master, the tool opens the slave --------

class SerialLine:
    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.acks: dict[tuple[int, int], float] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        """Read what the tool writes back (the gateway's ACK and STATE frames)."""
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
            for line in lines:
                parts = line.split(b",")
                if len(parts) > 3 and parts[3] == b"ACK" and parts[1].isdigit() and parts[2].isdigit():
                    with self._cond:
                        self.acks.setdefault((int(parts[1]), int(parts[2])), now)
                        self._cond.notify_all()

    def wait_ack(self, node: int, seq: int, timeout: float) -> float | None:
        """When the ACK for ``(node, seq)`` came back on the line, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (node, seq) not in self.acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self.acks[(node, seq)]

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the tool stopped reading the serial line") from None
                select.select([], [self.master], [], min(left, 0.1))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            with suppress(OSError):
                os.close(fd)


class Frames:
    """SPEC §2 uplink frames, nodes round-robin, each node alternating PRESS/RELEASE with its
    own increasing ``seq``. Both tools get the same bytes."""

    def __init__(self, nodes: list[int]) -> None:
        from drivers.frames import Frame, FrameType, encode_frame

        self._encode = lambda n, s, t: encode_frame(Frame(n, s, FrameType(t), 0, 3000))
        self.nodes = nodes
        self.seq = dict.fromkeys(nodes, 0)
        self.pressed = dict.fromkeys(nodes, False)
        self.i = 0

    def next(self) -> tuple[int, int, bytes]:
        node = self.nodes[self.i % len(self.nodes)]
        self.i += 1
        self.seq[node] = self.seq[node] % 65535 + 1
        self.pressed[node] = not self.pressed[node]
        return node, self.seq[node], self._encode(node, self.seq[node],
                                                  "PRESS" if self.pressed[node] else "RELEASE")


# -- a tool under test: a child process speaking bench.mqttio_driver's command protocol -------

class ToolError(RuntimeError):
    pass


class Tool:
    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        t0 = time.perf_counter()
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, cwd=ROOT, env=env)
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"{name}-replies", daemon=True).start()
        self.info = self.reply(60)
        if not self.info.get("ready"):
            raise ToolError(f"{name} not ready: {self.info.get('error')}")
        self.start_s = time.perf_counter() - t0
        self.pid = int(self.info["pid"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with suppress(ValueError):
                self._replies.put(json.loads(line))
        self._replies.put(None)

    def reply(self, timeout: float) -> dict[str, Any]:
        try:
            doc = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise ToolError(f"{self.name}: no answer within {timeout} s") from None
        if doc is None:
            raise ToolError(f"{self.name} exited (code {self.proc.poll()}); log: {self.log}")
        if "error" in doc and "ready" not in doc:
            raise ToolError(f"{self.name}: {doc['error']}")
        return doc

    def request(self, doc: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(doc) + "\n")
        self.proc.stdin.flush()
        return self.reply(timeout)

    def close(self) -> None:
        with suppress(Exception):
            self.request({"op": "quit"}, 10)
        with suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._stderr.close()


# -- the gateway's side of the driver protocol (runs in the child process) -------------------

def gateway_driver(config_path: str) -> None:
    """Runs this gateway in-process on a MockFactory and answers the bench's commands with
    the same loop as mqtt-io's driver (:func:`bench.mqttio_driver.serve`)."""
    from bench.mqttio_driver import protocol_stream, send, serve

    out = protocol_stream()
    logging.basicConfig(level=logging.WARNING)
    from gpiozero.pins.mock import MockFactory

    from gateway import __version__
    from gateway.app import Gateway
    from gateway.config.schema import load_config

    factory = MockFactory()
    gw = Gateway(load_config(Path(config_path)), simulate=True, pin_factory=factory)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        try:
            await asyncio.wait_for(asyncio.gather(gw.ready.wait(), gw.mqtt.connected.wait()), 30)
        except Exception as exc:
            send(out, {"ready": False, "error": repr(exc)})
            stop.set()
            with suppress(Exception):
                await asyncio.wait_for(task, 15)
            return
        send(out, {"ready": True, "pid": os.getpid(), "tool": GW, "version": __version__,
                   "gpiozero": dist_version("gpiozero"), "python": sys.version.split()[0]})
        threading.Thread(
            target=serve, args=(factory.pin, lambda: loop.call_soon_threadsafe(stop.set), out),
            name="bench-driver", daemon=True,
        ).start()
        await task

    asyncio.run(run())


SITE = """
[site]
id = "{site}"
name = "Side by side"
[[wards]]
id = "w"
name = "Ward"
{devices}
[serial]
port = "{serial}"
supervision_s = 600
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[storage]
path = "{storage}"
[health]
interval_s = 30
"""


def gateway_site(folder: Path, port: int, serial: str) -> Path:
    gpio = "".join(f'[[devices]]\nid = "g{p}"\nward = "w"\nroom = "R{p}"\npin = {p}\n'
                   f"bounce_ms = 0\nhold_s = 60\n" for p in PINS)
    nodes = "".join(f'[[devices]]\nid = "n{n}"\nward = "w"\nroom = "B{n}"\ninput = "serial"\n'
                    f"node = {n}\n" for n in NODES)
    path = folder / "site.toml"
    path.write_text(SITE.format(site=SITE_ID, devices=gpio + nodes, serial=serial, port=port,
                                storage=folder / "var"))
    return path


# -- measurements ---------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    version: str = ""
    error: str = ""
    start_s: float | None = None
    idle_rss: float | None = None
    peak_rss: float | None = None
    gpio_lat: list[float] = field(default_factory=list)
    gpio_lost: int = 0
    serial_lat: list[float] = field(default_factory=list)
    serial_lost: int = 0
    ack_lat: list[float] = field(default_factory=list)
    gpio_rates: Ladder | None = None
    serial_rates: Ladder | None = None
    gpio_outage: dict[str, Any] = field(default_factory=dict)
    serial_outage: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _pause(rng: random.Random, gap: float = JITTER_S) -> None:
    """A random gap between one-at-a-time inputs, at least as long as a polling tool's
    interval, so that an input does not land at the same phase of its cycle every time
    (which would bias its latency)."""
    time.sleep(rng.uniform(0.0, gap))


def sequential_gpio(tool: Tool, sub: Subscriber, presses: int, res: Result,
                    gap: float = JITTER_S) -> None:
    key = (tool.name, "gpio")
    rng = random.Random(1)
    for i in range(presses):
        pin = PINS[i % len(PINS)]
        for low in (True, False):
            _pause(rng, gap)
            start = sub.count(key)
            t0 = tool.request({"op": "drive", "pin": pin, "low": low})["t0"]
            if sub.wait_count(key, start + 1, 5):
                res.gpio_lat.append(sub.items(key, start)[0][0] - t0)
            else:
                res.gpio_lost += 1


def sequential_serial(tool: Tool, sub: Subscriber, line: SerialLine, frames: Frames,
                      count: int, res: Result) -> None:
    key = (tool.name, "serial")
    rng = random.Random(2)
    for _ in range(count):
        _pause(rng)
        start = sub.count(key)
        node, seq, data = frames.next()
        t0 = time.perf_counter()
        line.write(data)
        if sub.wait_count(key, start + 1, 5):
            res.serial_lat.append(sub.items(key, start)[0][0] - t0)
        else:
            res.serial_lost += 1
        if tool.name == GW:
            acked = line.wait_ack(node, seq, 2.0)
            if acked is not None:
                res.ack_lat.append(acked - t0)


@dataclass
class Step:
    rate: int
    achieved: float  # the rate actually offered (the driver or writer may be held back)
    lossless: bool
    in_order: bool
    drain_s: float  # last arrival after the last input: a backlog if large
    why: str

    @property
    def sustained(self) -> bool:
        """Nothing lost and no backlog: the last event arrived ≤ MAX_DRAIN_S after the last
        input."""
        return self.lossless and self.drain_s <= MAX_DRAIN_S

    @property
    def held_back(self) -> bool:
        """The offered rate fell short by more than 10 % (the tool's per-input cost slowed
        the driver, or it stopped reading the pty)."""
        return self.achieved < 0.9 * self.rate


def _judge(rate: int, achieved: float, items: list[tuple[float, Any]], got: list[Any],
           expected: list[Any], ended: float) -> Step:
    missing = sum((Counter(expected) - Counter(got)).values())
    in_order = got == expected
    drain = max((t for t, _ in items), default=ended) - ended
    why = (f"{len(got)}/{len(expected)} arrived, {missing} missing, "
           f"{'in order' if in_order else 'NOT in the order made'}, offered {achieved:.0f}/s, "
           f"last arrival {drain:.2f} s after the last input")
    return Step(rate, achieved, missing == 0, in_order, drain, why)


def gpio_rate(tool: Tool, sub: Subscriber, rate: int, seconds: float) -> Step:
    key = (tool.name, "gpio")
    start = sub.count(key)
    done = tool.request({"op": "burst", "pins": PINS, "rate": rate, "seconds": seconds},
                        timeout=seconds * 5 + 30)
    achieved = done["presses"] / max(1e-9, done["t1"] - done["t0"])
    expected = []
    for i in range(done["presses"]):
        pin = PINS[i % len(PINS)]
        expected += [(pin, "press"), (pin, "release")]
    sub.wait_count(key, start + len(expected), 20)
    sub.settle(key, 0.5, 5)
    items = sub.items(key, start)
    got = [(it[0], it[1]) for _, it in items]
    return _judge(rate, achieved, items, got, expected, done["t1"])


def serial_rate(tool: Tool, sub: Subscriber, line: SerialLine, frames: Frames, rate: int,
                seconds: float) -> Step:
    key = (tool.name, "serial")
    start = sub.count(key)
    messages = sub.stream_messages
    total = int(rate * seconds)
    written: list[tuple[int, str, bytes]] = []
    t0 = time.perf_counter()
    try:
        for i in range(total):
            node, _seq, data = frames.next()
            line.write(data)
            written.append((node, "press" if b",PRESS," in data else "release", data))
            ahead = t0 + (i + 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    except TimeoutError:
        pass
    ended = time.perf_counter()
    achieved = len(written) / max(1e-9, ended - t0)
    sub.wait_count(key, start + len(written), 20)
    sub.settle(key, 0.5, 5)
    items = sub.items(key, start)
    expected: list[Any]
    if tool.name == MQ:
        got: list[Any] = [b for _, b in items]
        expected = [w[2] for w in written]
    else:
        got = [(it[0], it[1]) for _, it in items]
        expected = [(w[0], w[1]) for w in written]
    step = _judge(rate, achieved, items, got, expected, ended)
    if tool.name == MQ:
        step.why += f"; in {sub.stream_messages - messages} MQTT messages"
    if len(written) < total:
        step.lossless = False
        step.why += f"; the tool stopped reading after {len(written)} frames"
    return step


@dataclass
class Ladder:
    lossless: float | None = None  # highest rate taken with zero loss
    ordered: float | None = None  # ... and everything in the order made
    top: bool = False  # kept up to the top of the ladder: the limit is higher
    first_disorder: int | None = None
    stopped: str = ""


def ladder(name: str, rates: list[int], step: Callable[[int], Step]) -> Ladder:
    """Up the ladder while steps are sustained (:attr:`Step.sustained`) at the offered rate.
    A sustained step that was held back counts at the rate it reached, and ends the ladder."""
    out = Ladder(lossless=0.0, ordered=0.0, top=True)
    for rate in rates:
        s = step(rate)
        verdict = ("LOSS" if not s.lossless else "BACKLOG" if not s.sustained
                   else "HELD BACK" if s.held_back else "ok")
        print(f"    {name} {rate:>5}/s: {verdict:<9} ({s.why})", flush=True)
        if not s.sustained:
            out.top, out.stopped = False, f"{verdict.lower()} at {rate}/s"
            break
        out.lossless = max(out.lossless or 0.0, s.achieved)
        if not s.in_order and out.first_disorder is None:
            out.first_disorder = rate
        if out.first_disorder is None:
            out.ordered = max(out.ordered or 0.0, s.achieved)
        if s.held_back:
            out.top, out.stopped = False, f"held back at {rate}/s"
            break
    return out


def outage(tool: Tool, sub: Subscriber, broker: Broker, job: str, line: SerialLine,
           frames: Frames, edge_gap: float = 0.025) -> dict[str, Any]:
    """Stop the broker, make inputs, start it again; count what reaches the subscriber."""
    key = (tool.name, job)
    sub.settle(key, 0.5, 10)
    start = sub.count(key)
    broker.stop()
    time.sleep(1.0)
    if job == "gpio":
        made = 0
        for i in range(OUTAGE_PRESSES):
            pin = PINS[i % len(PINS)]
            for low in (True, False):
                tool.request({"op": "drive", "pin": pin, "low": low})
                made += 1
                time.sleep(edge_gap)
    else:
        made = 0
        for _ in range(OUTAGE_FRAMES):
            line.write(frames.next()[2])
            made += 1
            time.sleep(0.05)
    time.sleep(1.0)
    restarted = time.perf_counter()
    broker.start()
    sub.wait_count(key, start + made, OUTAGE_WAIT_S)
    sub.settle(key, 2.0, 10)
    items = sub.items(key, start)
    if tool.name == GW:
        ids = [it[3] for _, it in items]
        arrived, dups = len(set(ids)), len(ids) - len(set(ids))
    else:
        arrived, dups = len(items), 0
    last = max((t for t, _ in items), default=restarted) - restarted
    # does it still work afterwards?
    probe_start = sub.count(key)
    if job == "gpio":
        tool.request({"op": "drive", "pin": PINS[0], "low": True})
        time.sleep(edge_gap)
        tool.request({"op": "drive", "pin": PINS[0], "low": False})
    else:
        line.write(frames.next()[2])
    recovered = sub.wait_count(key, probe_start + 1, 15)
    sub.settle(key, 0.5, 5)
    return {"made": made, "arrived": min(arrived, made), "dups": dups,
            "last_after_restart_s": last, "recovered": recovered}


def measure(tool_name: str, spawn: Callable[[SerialLine], Tool], sub: Subscriber, broker: Broker,
            args: argparse.Namespace) -> Result:
    res = Result(tool_name)
    line = SerialLine()
    frames = Frames(NODES)
    tool: Tool | None = None
    try:
        tool = spawn(line)
        res.version = str(tool.info.get("version"))
        res.start_s = tool.start_s
        time.sleep(2)
        res.idle_rss = rss_mib(tool.pid)[0]
        print(f"  {tool_name} {res.version}: connected after {tool.start_s:.2f} s, "
              f"idle RSS {res.idle_rss:.1f} MiB", flush=True)
        # warm-up, not measured
        for low in (True, False):
            tool.request({"op": "drive", "pin": PINS[0], "low": low})
        line.write(frames.next()[2])
        line.write(frames.next()[2])
        sub.settle((tool_name, "gpio"), 0.5, 10)
        sub.settle((tool_name, "serial"), 0.5, 10)

        sequential_gpio(tool, sub, args.presses, res)
        lat = [x * 1000 for x in res.gpio_lat]
        print(f"    GPIO edge → subscriber over {len(lat)} events: p50 {percentile(lat, 50):.2f} ms, "
              f"p99 {percentile(lat, 99):.2f} ms, lost {res.gpio_lost}", flush=True)
        sequential_serial(tool, sub, line, frames, args.frames, res)
        lat = [x * 1000 for x in res.serial_lat]
        print(f"    serial line → subscriber over {len(lat)} frames: p50 {percentile(lat, 50):.2f} ms, "
              f"p99 {percentile(lat, 99):.2f} ms, lost {res.serial_lost}", flush=True)
        if res.ack_lat:
            acks = [x * 1000 for x in res.ack_lat]
            print(f"    serial frame → ACK on the line: p50 {percentile(acks, 50):.2f} ms, "
                  f"p99 {percentile(acks, 99):.2f} ms", flush=True)

        res.gpio_rates = ladder(
            "GPIO presses", GPIO_RATES, lambda r: gpio_rate(tool, sub, r, args.seconds))
        res.serial_rates = ladder(
            "serial frames", SERIAL_RATES,
            lambda r: serial_rate(tool, sub, line, frames, r, args.seconds))

        for job in ("gpio", "serial"):
            out = outage(tool, sub, broker, job, line, frames)
            setattr(res, f"{job}_outage", out)
            print(f"    broker outage, {job}: {out['arrived']}/{out['made']} arrived "
                  f"(+{out['dups']} duplicates), last {out['last_after_restart_s']:.1f} s after "
                  f"restart; works afterwards: {out['recovered']}", flush=True)
        res.peak_rss = rss_mib(tool.pid)[1]
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
        print(f"  {tool_name}: FAILED: {res.error}", flush=True)
        if broker.proc is None:
            broker.start()
    finally:
        if tool is not None:
            if res.peak_rss is None and tool.proc.poll() is None:
                with suppress(Exception):
                    res.peak_rss = rss_mib(tool.pid)[1]
            tool.close()
            res.notes += log_evidence(tool.log)
        line.close()
    return res


def measure_polling(spawn: Callable[[SerialLine], Tool], sub: Subscriber, broker: Broker,
                    presses: int) -> Result:
    """mqtt-io with its GPIO inputs polled (``poll_interval`` default 0.1 s) instead of
    interrupts: GPIO latency and the broker outage only. Edges are spaced beyond the poll
    interval (a shorter press is invisible to a poller)."""
    res = Result(MQ + " (polling)")
    line = SerialLine()
    frames = Frames(NODES)
    tool: Tool | None = None
    try:
        tool = spawn(line)
        res.version = str(tool.info.get("version"))
        sub.settle((MQ, "gpio"), 0.5, 5)
        for low in (True, False):  # warm-up
            tool.request({"op": "drive", "pin": PINS[0], "low": low})
            sub.wait_count((MQ, "gpio"), sub.count((MQ, "gpio")) + 1, 2)
        sequential_gpio(tool, sub, presses, res, gap=POLL_INTERVAL)
        lat = [x * 1000 for x in res.gpio_lat]
        print(f"    GPIO edge → subscriber over {len(lat)} events: p50 {percentile(lat, 50):.2f} ms, "
              f"p99 {percentile(lat, 99):.2f} ms, lost {res.gpio_lost}", flush=True)
        res.gpio_outage = outage(tool, sub, broker, "gpio", line, frames, edge_gap=POLL_INTERVAL * 1.5)
        o = res.gpio_outage
        print(f"    broker outage, gpio: {o['arrived']}/{o['made']} arrived; works afterwards: "
              f"{o['recovered']}", flush=True)
        res.peak_rss = rss_mib(tool.pid)[1]
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
        print(f"  {res.name}: FAILED: {res.error}", flush=True)
        if broker.proc is None:
            broker.start()
    finally:
        if tool is not None:
            tool.close()
            res.notes += log_evidence(tool.log)
        line.close()
    return res


def log_evidence(log: Path) -> list[str]:
    """What the tool said about the outage, counted from its WARNING-level log."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    notes = []
    for needle, what in (("Ignored interrupt", "GPIO interrupts ignored while not connected"),
                         ("Connection to MQTT broker failed", "broker connection failures logged")):
        n = text.count(needle)
        if n:
            notes.append(f"{what}: {n} (log: `{needle} …`)")
    return notes


# -- mqtt-io's throwaway virtualenv -----------------------------------------------------------

def mqttio_venv(folder: Path, reuse: str | None) -> tuple[Path | None, str]:
    """A venv with mqtt-io (and the same gpiozero and pyserial as this project); or None and
    the reason."""
    if reuse:
        python = Path(reuse) / "bin" / "python"
        return (python, "") if python.exists() else (None, f"no {python}")
    venv = folder / "mqttio-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                       text=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return None, f"python -m venv failed: {getattr(exc, 'stderr', '') or exc}"
    python = venv / "bin" / "python"
    pkgs = ["mqtt-io", f"gpiozero=={dist_version('gpiozero')}", f"pyserial=={dist_version('pyserial')}"]
    print(f"  installing {' '.join(pkgs)} into {venv}", flush=True)
    try:
        done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                               "--disable-pip-version-check", *pkgs],
                              capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired:
        return None, "pip install mqtt-io timed out after 400 s"
    if done.returncode != 0:
        tail = "\n".join(line for line in done.stderr.splitlines()
                         if not line.startswith("WARNING: Location"))[-1500:]
        return None, f"pip install mqtt-io failed (exit {done.returncode}):\n{tail}"
    return python, ""


# -- the report -------------------------------------------------------------------------------

def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _ratio(a: float | None, b: float | None, a_floor: bool = False, b_floor: bool = False) -> str:
    if a is None or b is None or (a == 0 and b == 0):
        return "n/a"
    if b == 0:
        return "∞ (mqtt-io: none)"
    if a == 0:
        return "0× (gateway: none)"
    r = a / b
    if a_floor and b_floor:
        return "≥ ladder top for both"
    prefix = "≥ " if a_floor else ("≤ " if b_floor else "")
    return f"{prefix}{r:.2f}×"


def _p(values: list[float], q: float) -> float | None:
    return percentile([v * 1000 for v in values], q) if values else None


def _rate_cells(gw: Ladder | None, mq: Ladder | None, which: str) -> tuple[str, str, str]:
    def cell(lad: Ladder | None) -> tuple[str, float | None, bool]:
        if lad is None:
            return "n/a", None, False
        v = lad.lossless if which == "lossless" else lad.ordered
        why = lad.stopped
        if which == "ordered" and lad.first_disorder is not None:
            why = f"out of order at {lad.first_disorder}/s"
        if not v:
            return f"< {GPIO_RATES[0]} ({why})", None, False
        top = lad.top and (which == "lossless" or lad.first_disorder is None)
        return (f"≥ {v:.0f}" if top else f"{v:.0f} ({why})"), v, top

    a, av, atop = cell(gw)
    b, bv, btop = cell(mq)
    return a, b, _ratio(av, bv, atop, btop)


def table(gw: Result, mq: Result) -> str:
    def outage_cell(o: dict[str, Any]) -> str:
        if not o:
            return "n/a"
        cell = f"{o['arrived']}/{o['made']} arrived"
        if o["dups"]:
            cell += f" (+{o['dups']} dup.)"
        return cell + ("" if o["recovered"] else "; **nothing arrives after it**")

    def frac(o: dict[str, Any]) -> float | None:
        return o["arrived"] / o["made"] if o and o["made"] else None

    rows = [
        ("GPIO edge → subscriber, p50 (ms)", _p(gw.gpio_lat, 50), _p(mq.gpio_lat, 50), "lower"),
        ("GPIO edge → subscriber, p99 (ms)", _p(gw.gpio_lat, 99), _p(mq.gpio_lat, 99), "lower"),
        ("serial line → subscriber, p50 (ms)", _p(gw.serial_lat, 50), _p(mq.serial_lat, 50), "lower"),
        ("serial line → subscriber, p99 (ms)", _p(gw.serial_lat, 99), _p(mq.serial_lat, 99), "lower"),
    ]
    out = [
        "| measure | this gateway | mqtt-io | gateway ÷ mqtt-io | better |",
        "|---|---:|---:|---:|---|",
    ]
    for label, a, b, better in rows:
        out.append(f"| {label} | {_fmt(a)} | {_fmt(b)} | {_ratio(a, b)} | {better} |")
    out.append(f"| serial frame → ACK back on the line, p50 / p99 (ms) | {_fmt(_p(gw.ack_lat, 50))} / "
               f"{_fmt(_p(gw.ack_lat, 99))} | sends no ACK | n/a | lower |")
    for job, label, unit in (("gpio", "GPIO", "presses/s, 2 events each"),
                             ("serial", "serial", "frames/s")):
        lg, lm = getattr(gw, f"{job}_rates"), getattr(mq, f"{job}_rates")
        a, b, r = _rate_cells(lg, lm, "lossless")
        out.append(f"| {label} sustained rate with zero loss ({unit}) | {a} | {b} | {r} | higher |")
        a, b, r = _rate_cells(lg, lm, "ordered")
        out.append(f"| {label} sustained rate with zero loss and in the order made ({unit}) "
                   f"| {a} | {b} | {r} | higher |")
    out.append(f"| RSS idle (MiB) | {_fmt(gw.idle_rss, 1)} | {_fmt(mq.idle_rss, 1)} | "
               f"{_ratio(gw.idle_rss, mq.idle_rss)} | lower |")
    out.append(f"| RSS peak over the whole run (MiB) | {_fmt(gw.peak_rss, 1)} | {_fmt(mq.peak_rss, 1)} | "
               f"{_ratio(gw.peak_rss, mq.peak_rss)} | lower |")
    out.append(f"| start → connected and ready (s) | {_fmt(gw.start_s)} | {_fmt(mq.start_s)} | "
               f"{_ratio(gw.start_s, mq.start_s)} | lower |")
    out.append(f"| broker outage, GPIO ({OUTAGE_PRESSES} presses = {2 * OUTAGE_PRESSES} events) | "
               f"{outage_cell(gw.gpio_outage)} | {outage_cell(mq.gpio_outage)} | "
               f"{_ratio(frac(gw.gpio_outage), frac(mq.gpio_outage))} | higher |")
    out.append(f"| broker outage, serial ({OUTAGE_FRAMES} frames) | "
               f"{outage_cell(gw.serial_outage)} | {outage_cell(mq.serial_outage)} | "
               f"{_ratio(frac(gw.serial_outage), frac(mq.serial_outage))} | higher |")
    out.append("| the job done per event | committed to the journal on disk (SQLite WAL, "
               "synchronous=FULL) before it is published or ACKed; JSON event with id and journal "
               "seq; QoS 1; serial frames CRC-checked, de-duplicated by seq, ACKed | in memory "
               "only; GPIO `ON`/`OFF`; serial: the raw bytes of one read, unframed, unchecked; "
               "QoS 0 (fixed for inputs and streams) | | |")
    return "\n".join(out)


def poll_table(gw: Result, poll: Result) -> str:
    def outage_cell(o: dict[str, Any]) -> str:
        return "n/a" if not o else f"{o['arrived']}/{o['made']} arrived"

    def frac(o: dict[str, Any]) -> float | None:
        return o["arrived"] / o["made"] if o and o["made"] else None

    out = [
        "| measure | this gateway | mqtt-io, GPIO polled | gateway ÷ mqtt-io | better |",
        "|---|---:|---:|---:|---|",
    ]
    for q in (50, 99):
        a, b = _p(gw.gpio_lat, q), _p(poll.gpio_lat, q)
        out.append(f"| GPIO edge → subscriber, p{q} (ms) | {_fmt(a)} | {_fmt(b)} | {_ratio(a, b)} | lower |")
    out.append(f"| broker outage, GPIO ({2 * OUTAGE_PRESSES} edges, {POLL_INTERVAL * 1.5:g} s apart "
               f"for the poller) | {outage_cell(gw.gpio_outage)} | {outage_cell(poll.gpio_outage)} | "
               f"{_ratio(frac(gw.gpio_outage), frac(poll.gpio_outage))} | higher |")
    return "\n".join(out)


def report(gw: Result, mq: Result, poll: Result, args: argparse.Namespace, broker_version: str,
           mqttio_problem: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Side by side: this gateway and mqtt-io",
        "",
        f"Run {now} on {machine()}; mosquitto {broker_version} on 127.0.0.1; "
        f"this gateway {gw.version or '?'}; mqtt-io {mq.version or 'not run'} from PyPI in its "
        f"own virtualenv; gpiozero {dist_version('gpiozero')} (MockFactory) for both. "
        "Method, fairness and how to read this: docs/benchmarks.md.",
        "",
        f"Latency: {2 * args.presses} GPIO edges and {args.frames} serial frames, one at a time "
        f"(0–{JITTER_S * 1000:.0f} ms random gap). Rates: {args.seconds:g} s bursts up a ladder "
        f"(GPIO {GPIO_RATES[0]}–{GPIO_RATES[-1]} presses/s, serial {SERIAL_RATES[0]}–"
        f"{SERIAL_RATES[-1]} frames/s); a step is sustained when nothing is missing and the last "
        f"event reaches the subscriber ≤ {MAX_DRAIN_S:g} s after the last input (else: a "
        "backlog); the rate shown is the rate actually offered (a tool whose per-input cost "
        "holds the driver back more than 10 % ends the ladder there). In brackets: why the "
        "ladder stopped. \"≥\": the top of the ladder was sustained. Outage: mosquitto stopped, inputs "
        f"made, mosquitto started again, arrivals counted for up to {OUTAGE_WAIT_S} s.",
        "",
        table(gw, mq),
        "",
        "mqtt-io settings: `gpiozero` module with `interrupt: both` (software callback, no "
        f"polling); serial stream `read_interval: {READ_INTERVAL:g}` (its minimum; default 60 s); "
        "everything else default (QoS 0 for inputs and streams, reconnect_delay 2 s, "
        "clean_session false). This gateway: `bounce_ms = 0`, everything else default. "
        "Logging at WARNING for both.",
    ]
    if poll.gpio_lat or poll.gpio_outage:
        lines += [
            "",
            f"mqtt-io with its GPIO inputs polled (`poll_interval: {POLL_INTERVAL:g}`, the "
            f"default) instead of interrupts, {2 * args.poll_presses} edges:",
            "",
            poll_table(gw, poll),
        ]
    for r in (gw, mq, poll):
        for note in r.notes:
            lines += ["", f"{r.name}: {note}."]
        if r.error:
            lines += ["", f"**{r.name} did not complete:** {r.error}"]
        if r.gpio_lost or r.serial_lost:
            lines += ["", f"{r.name}: {r.gpio_lost} GPIO edges and {r.serial_lost} serial frames "
                      "never arrived in the latency run (5 s wait each)."]
    if mqttio_problem:
        lines += ["", "**mqtt-io could not be measured:**", "", "```", mqttio_problem, "```"]
    return "\n".join(lines) + "\n"


@contextmanager
def _tempdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="side-by-side-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=300, help="sequential presses (2 edges each)")
    parser.add_argument("--frames", type=int, default=300, help="sequential serial frames")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each rate step")
    parser.add_argument("--poll-presses", type=int, default=50,
                        help="sequential presses for mqtt-io with GPIO polling")
    parser.add_argument("--mqttio-venv", default=os.environ.get("MQTTIO_VENV"),
                        help="use this venv (with mqtt-io installed) instead of a fresh one")
    parser.add_argument("--gateway-driver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gateway_driver:
        gateway_driver(args.gateway_driver)
        return

    print(f"machine: {machine()}", flush=True)
    with _tempdir() as tmp:
        python, problem = mqttio_venv(tmp, args.mqttio_venv)
        if problem:
            print(f"  mqtt-io unavailable: {problem}", flush=True)
        broker = Broker(tmp)
        broker.start()
        sub = Subscriber(broker.port)
        try:
            def spawn_gateway(line: SerialLine) -> Tool:
                folder = tmp / "gateway"
                folder.mkdir(exist_ok=True)
                config = gateway_site(folder, broker.port, line.path)
                return Tool(GW, [sys.executable, "-m", "bench.side_by_side", "--gateway-driver",
                                 str(config)], tmp / "gateway.log")

            def spawn_mqttio(line: SerialLine, gpio: str = "interrupt") -> Tool:
                assert python is not None
                spec = tmp / "mqttio.json"
                spec.write_text(json.dumps({"host": "127.0.0.1", "port": broker.port,
                                            "prefix": MQTTIO_PREFIX, "pins": PINS,
                                            "serial": line.path, "read_interval": READ_INTERVAL,
                                            "gpio": gpio, "poll_interval": POLL_INTERVAL}))
                env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
                return Tool(MQ, [str(python), str(ROOT / "bench" / "mqttio_driver.py"), str(spec)],
                            tmp / f"mqttio-{gpio}.log", env=env)

            print("this gateway:", flush=True)
            gw = measure(GW, spawn_gateway, sub, broker, args)
            if python is not None:
                print("mqtt-io:", flush=True)
                mq = measure(MQ, spawn_mqttio, sub, broker, args)
                print("mqtt-io, GPIO polled instead of interrupts:", flush=True)
                poll = measure_polling(lambda line: spawn_mqttio(line, "poll"), sub, broker,
                                       args.poll_presses)
            else:
                mq = Result(MQ, error="not installed")
                poll = Result(MQ + " (polling)", error="not installed")
            for r, log in ((gw, "gateway.log"), (mq, "mqttio-interrupt.log"),
                           (poll, "mqttio-poll.log")):
                if r.error and (tmp / log).exists():
                    tail = (tmp / log).read_text(errors="replace")[-2000:]
                    print(f"--- {r.name} log tail ---\n{tail}", flush=True)
        finally:
            sub.stop()
            broker.stop()
        text = report(gw, mq, poll, args, broker.version(), problem)
    print()
    print(text)
    RESULTS.write_text(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
