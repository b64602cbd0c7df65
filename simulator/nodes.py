"""Simulated serial button nodes: the real firmware, many nodes, one pseudo-terminal.

Like a receiver hub on one UART: every node's uplink goes to the pty master, and every
downlink line the gateway writes on the slave is given to every node (each keeps the frames
for its own id). The gateway opens :attr:`BusSimulator.port`, a symlink to the current slave,
so closing and reopening the line (:meth:`BusSimulator.close_line` / ``reopen_line``) looks
like a USB adapter unplugged and plugged back in.

All nodes run in one background thread that calls each firmware's ``step()`` every
``tick_s`` seconds. The controls (press, hold, silence, faults ...) may be called from any
thread; they are applied on the next tick.
"""

from __future__ import annotations

import os
import pty
import queue
import random
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_stubs.host import HostTicks, MemoryLink, NodeHardware, load_firmware


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One simulated node. Milliseconds; ``battery_mv`` at start (0 = mains powered)."""

    node: int
    key: bytes | None = None
    battery_mv: int = 3000
    hold_ms: int = 3000
    hb_ms: int = 60_000
    debounce_ms: int = 20
    ack_timeout_ms: int = 500
    max_attempts: int = 10


@dataclass(slots=True)
class Faults:
    """Per-byte probabilities applied to the line in both directions (seeded random)."""

    corrupt: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0


class SimNode:
    """A node's fake hardware plus the firmware object running on it."""

    def __init__(self, spec: NodeSpec, state_dir: Path, ticks: HostTicks) -> None:
        self.spec = spec
        self.link = MemoryLink()
        self.hw = NodeHardware(self.link, spec.battery_mv)
        self.seq_path = str(state_dir / f"node{spec.node}.seq")
        self._ticks = ticks
        self.drop_downlink = 0  # the next N frames addressed to this node are lost
        self.firmware: Any = None

    def boot(self) -> None:
        """Power on (or reboot): RAM state is lost, the seq file on "flash" is kept."""
        fw = load_firmware()
        s = self.spec
        self.link.take_uplink()
        self.firmware = fw.ButtonNode(
            s.node, self.hw.uart, self.hw.button, tamper=self.hw.tamper, led=self.hw.led,
            adc=self.hw.adc if s.battery_mv else None, key=s.key, seq_path=self.seq_path,
            clock=self._ticks, hold_ms=s.hold_ms, debounce_ms=s.debounce_ms, hb_ms=s.hb_ms,
            ack_timeout_ms=s.ack_timeout_ms, max_attempts=s.max_attempts,
        )  # fmt: skip
        self.firmware.start()


class BusSimulator:
    """Any number of :class:`NodeSpec` nodes sharing one pty pair."""

    def __init__(
        self,
        specs: Iterable[NodeSpec],
        state_dir: str | os.PathLike[str],
        *,
        tick_s: float = 0.005,
        seed: int = 0,
        ticks: HostTicks | None = None,
    ) -> None:
        self._dir = Path(state_dir)
        self._ticks = ticks or HostTicks()
        self._tick_s = tick_s
        self._specs = list(specs)
        self._random = random.Random(seed)
        self.faults = Faults()
        self.nodes: dict[int, SimNode] = {}
        self._uplink_log: deque[bytes] = deque(maxlen=10_000)
        self._downlink_log: deque[bytes] = deque(maxlen=10_000)
        self._log_lock = threading.Lock()
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._master: int | None = None
        self._slave: int | None = None
        self._to_gateway = bytearray()
        self._from_gateway = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> str:
        """The path the gateway opens as its serial port (a symlink to the pty slave)."""
        return str(self._dir / "ttyBUS0")

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._open_line()
        for spec in self._specs:
            node = SimNode(spec, self._dir, self._ticks)
            node.boot()
            self.nodes[spec.node] = node
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bus-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close_fds()
        Path(self.port).unlink(missing_ok=True)

    def __enter__(self) -> BusSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls (any thread) --------------------------------------------------------

    def call(self, action: Callable[[], None], wait: bool = True) -> None:
        """Run ``action`` on the simulator thread before its next tick; wait for it."""
        done = threading.Event()

        def run() -> None:
            try:
                action()
            finally:
                done.set()

        self._commands.put(run)
        if wait and self._thread is not None:
            done.wait(timeout=5)

    def press(self, node: int, duration_s: float = 0.15) -> None:
        """A short press: down now, up after ``duration_s``."""
        self.call(lambda: self._press(node, duration_s))

    def hold(self, node: int) -> None:
        """Press and keep the button down (a duress HOLD after the node's hold time)."""
        self.call(lambda: self.nodes[node].hw.button.drive(0))

    def release(self, node: int) -> None:
        self.call(lambda: self.nodes[node].hw.button.drive(1))

    def silence(self, node: int, silent: bool = True) -> None:
        """Stop (or resume) the node's transmitter; it keeps running otherwise."""
        self.call(lambda: setattr(self.nodes[node].link, "muted", silent))

    def reboot(self, node: int) -> None:
        self.call(self.nodes[node].boot)

    def tamper(self, node: int, opened: bool = True) -> None:
        """Open (or close again) the node's enclosure switch."""
        self.call(lambda: self.nodes[node].hw.tamper.drive(1 if opened else 0))

    def drain_battery(self, node: int, battery_mv: int) -> None:
        self.call(lambda: self.nodes[node].hw.adc.set_mv(battery_mv))

    def lose_downlink(self, node: int, frames: int = 1) -> None:
        """Lose the next ``frames`` frames the gateway sends to ``node`` (e.g. an ACK)."""
        self.call(lambda: setattr(self.nodes[node], "drop_downlink", frames))

    def noisy(self, corrupt: float = 0.0, drop: float = 0.0, duplicate: float = 0.0) -> None:
        """Per-byte fault probabilities on the line, both ways; all 0 makes it clean."""
        self.call(lambda: setattr(self, "faults", Faults(corrupt, drop, duplicate)))

    def inject(self, data: bytes) -> None:
        """Raw bytes onto the line towards the gateway (garbage, replayed frames ...)."""
        self.call(lambda: self._to_gateway.extend(data))

    def close_line(self) -> None:
        """Unplug: the pty goes and so does :attr:`port` (as udev removes a by-id link), so
        the gateway's port reports an error and reopening fails until :meth:`reopen_line`."""
        self.call(self._unplug)

    def reopen_line(self) -> None:
        """A new pty behind the same :attr:`port` path, as when a USB adapter returns."""
        self.call(self._open_line)

    def led(self, node: int) -> int:
        """The LED state the node shows (0 idle .. 4 police acknowledged)."""
        return int(self.nodes[node].firmware.led_state)

    def uplink_log(self) -> list[bytes]:
        """The last 10,000 lines the nodes sent, as they left the nodes (before faults)."""
        with self._log_lock:
            return list(self._uplink_log)

    def downlink_log(self) -> list[bytes]:
        """The last 10,000 lines read from the gateway (after faults)."""
        with self._log_lock:
            return list(self._downlink_log)

    def stats(self, node: int) -> dict[str, int]:
        fw = self.nodes[node].firmware
        return {"sent": fw.sent, "acked": fw.acked, "gave_up": fw.gave_up}

    # -- the simulator thread ---------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._tick()
            self._stop.wait(max(0.0, self._tick_s - (time.monotonic() - started)))

    def _tick(self) -> None:
        while True:
            try:
                self._commands.get_nowait()()
            except queue.Empty:
                break
        self._fire_timers()
        for node in self.nodes.values():
            node.firmware.step()
            data = node.link.take_uplink()
            if data:
                with self._log_lock:
                    self._uplink_log.extend(data.splitlines(keepends=True))
                if self._master is not None:
                    self._to_gateway += self._distort(data)
        self._exchange()

    def _fire_timers(self) -> None:
        now = time.monotonic()
        due = [t for t in self._timers if t[0] <= now]
        self._timers = [t for t in self._timers if t[0] > now]
        for _, action in due:
            action()

    def _press(self, node: int, duration_s: float) -> None:
        self.nodes[node].hw.button.drive(0)
        self._timers.append((time.monotonic() + duration_s, lambda: self._release_now(node)))

    def _release_now(self, node: int) -> None:
        self.nodes[node].hw.button.drive(1)

    def _exchange(self) -> None:
        """Write pending uplink to the master, read downlink and hand it to the nodes."""
        master = self._master
        if master is None:
            self._to_gateway.clear()
            return
        try:
            if self._to_gateway:
                del self._to_gateway[: os.write(master, self._to_gateway)]
            while True:
                self._from_gateway += self._distort(os.read(master, 65536))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # the line was closed under us
            pass
        self._deliver()

    def _deliver(self) -> None:
        *lines, rest = bytes(self._from_gateway).split(b"\n")
        self._from_gateway = bytearray(rest[-1024:])
        with self._log_lock:
            self._downlink_log.extend(line + b"\n" for line in lines)
        for line in lines:
            target = _node_of(line)
            for node in self.nodes.values():
                if node.spec.node == target and node.drop_downlink > 0:
                    node.drop_downlink -= 1
                    continue
                node.link.deliver(line + b"\n")

    def _distort(self, data: bytes) -> bytes:
        f, rnd = self.faults, self._random
        if not (f.corrupt or f.drop or f.duplicate) or not data:
            return data
        out = bytearray()
        for byte in data:
            if rnd.random() < f.drop:
                continue
            if rnd.random() < f.corrupt:
                byte = rnd.randrange(256)
            out.append(byte)
            if rnd.random() < f.duplicate:
                out.append(byte)
        return bytes(out)

    # -- the pty ----------------------------------------------------------------------

    def _open_line(self) -> None:
        self._close_fds()
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass as they are
        os.set_blocking(master, False)
        self._master, self._slave = master, slave  # holding the slave keeps the pty alive
        link = Path(self.port)
        tmp = link.with_name(link.name + ".new")
        tmp.unlink(missing_ok=True)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, link)

    def _unplug(self) -> None:
        Path(self.port).unlink(missing_ok=True)
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._to_gateway.clear()
        self._from_gateway.clear()


def _node_of(line: bytes) -> int | None:
    """The node id a ``$PB1,<node>,...`` line is addressed to, if it reads as one."""
    parts = line.split(b",", 2)
    if len(parts) < 3 or not parts[1].isdigit():
        return None
    return int(parts[1])
