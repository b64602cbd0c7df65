"""The serial bus adapter: button nodes on a UART (SPEC §2), over pyserial, on asyncio.

It owns the port and nothing else: lines are cut by :class:`~drivers.frames.LineSplitter`,
decoded by :func:`~drivers.frames.decode_frame`, judged by :func:`gateway.serialbus.logic.decide`,
recorded through the :class:`~gateway.core.ports.EventSink`, and only once ``record`` returned
(the event is committed) is the ACK written. Reading never blocks the loop: the port's fd is
watched with ``loop.add_reader`` and written with ``add_writer`` when the kernel buffer is
full. A port that fails (USB unplugged, pty closed) puts the bus in trouble (``health()``
and one ``trouble`` event) and is reopened with capped exponential backoff.

Registry writes (the one before each batch's ACKs included) run on the bus's own single
thread, in order, never in asyncio's default pool, which other parts of the gateway (a flood
of console logins, say) could fill and so hold back an ACK.

Implements :class:`~gateway.core.ports.InputSource` and :class:`~gateway.core.ports.Indicator`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import serial

from drivers.frames import (
    UNKNOWN_NODE,
    Frame,
    FrameError,
    LineSplitter,
    Missing,
    ack_frame,
    decode_frame,
    encode_frame,
    state_frame,
)
from drivers.serialport import PortOpener, keep_open, open_serial
from gateway.config.values import parse_node_key
from gateway.core.backoff import Backoff
from gateway.core.errors import ConfigError
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, EventSink
from gateway.serialbus.logic import (
    BusPolicy,
    Decision,
    RejectLimiter,
    Reply,
    Supervisor,
    Verdict,
    ack_led,
    decide,
    newest_seq,
    rejected_frame_draft,
    supervision_draft,
)
from gateway.serialbus.registry import NodeRecord, Registry

log = logging.getLogger(__name__)

"""``(port, baudrate) -> an open pyserial port`` (with ``fileno()`` and ``close()``)."""

INBOX_HIGH = 2000  # lines waiting: stop reading (the kernel buffers, then the nodes retry)
INBOX_LOW = 200
OUTBOX_MAX = 64 * 1024  # bytes waiting to be written; beyond this frames are dropped
BATCH_MAX = 256  # lines handled as one batch (one commit, one registry write)



def load_key(path: str | os.PathLike[str]) -> bytes:
    """A node key from its key file: hex digits (whitespace ignored), at least 16 bytes."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([(str(path), f"cannot read key file: {exc}")]) from exc
    try:
        return parse_node_key(text)
    except ValueError as exc:
        raise ConfigError([(str(path), str(exc))]) from exc


@dataclass(frozen=True, slots=True)
class BusSettings:
    """The ``[serial]`` section. Seconds and millivolts."""

    port: str
    baudrate: int = 115200
    low_battery_mv: int = 2600
    supervision_s: float = 300.0
    name: str = "serial"
    rejects_per_minute: int = 10  # rejected frames journaled per minute; all are counted
    reopen_min_s: float = 0.2
    reopen_max_s: float = 10.0
    poll_s: float = 1.0  # how often supervision is checked
    #: how often changed records (last seen, battery, a heartbeat's seq) are written to the
    #: registry file. Rarely, because it wears the SD card: an accepted event's seq is in the
    #: journal already, the running gateway answers ``nodes`` from memory, and a power cut
    #: loses only these display fields of the last minutes (docs/benchmarks.md)
    flush_s: float = 900.0
    learn: bool = True  # remember unknown nodes that send BOOT, for enrolment


@dataclass(frozen=True, slots=True)
class BusNode:
    """One configured node: its device id, key file (None = no MAC) and supervision time."""

    node: int
    device: str
    key_file: str | None = None
    supervision_s: float | None = None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A decoded frame waiting for its batch to be committed: the node's record before it,
    what :func:`decide` made of it, and the drafts to record."""

    frame: Frame
    before: NodeRecord
    decision: Decision
    drafts: list[EventDraft]


class SerialBus:
    """Input source and LED indicator for every node on one serial port."""

    def __init__(
        self,
        settings: BusSettings,
        nodes: Iterable[BusNode],
        registry: Registry,
        clock: Clock,
        *,
        open_port: PortOpener = open_serial,
        journal_seqs: Mapping[int, int] | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._nodes = {n.node: n for n in nodes}
        self._registry = registry
        self._clock = clock
        self._open_port = open_port
        self._journal_seqs = dict(journal_seqs or {})  # node → seq committed with its event
        self._policy = BusPolicy(low_battery_mv=settings.low_battery_mv)
        self._supervisor = Supervisor(clock, settings.supervision_s)
        self._rejects = RejectLimiter(clock, settings.rejects_per_minute, 60.0)
        self._replays = RejectLimiter(clock, settings.rejects_per_minute, 60.0)
        self._keys: dict[int, bytes | None] = {}
        self._keys_loaded = False
        self._records: dict[int, NodeRecord] = {}
        self._dirty: set[int] = set()
        #: called with (device, last seen, battery mV) after each accepted heartbeat, and
        #: awaited every ``flush_s``: the gateway refreshes device state documents this way
        #: (a heartbeat is not an event: SPEC §2)
        self.on_heartbeat: Callable[[str, float, int], None] | None = None
        self.on_flush: Callable[[], Awaitable[None]] | None = None
        self._leds: dict[str, int] = {}
        self._learned: dict[int, float] = {}
        self._gw_seq = secrets.randbelow(65536)
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._error: str | None = "not started"
        self._trouble_journaled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._registry_pool = ThreadPoolExecutor(1, thread_name_prefix="serial-registry")
        self._fd: int | None = None
        self._splitter = LineSplitter()
        self._inbox: deque[bytes] = deque()
        self._outbox = bytearray()
        self._wakeup = asyncio.Event()
        self._failure: BaseException | None = None
        self._paused = False

    # -- InputSource ------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        """Serve the port until cancelled, reopening it whenever it fails."""
        self._loop = asyncio.get_running_loop()
        await self._prepare()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._housekeeping(sink))
                await self._connection_loop(sink)
        finally:
            self._flush_dirty_now()

    def health(self) -> dict[str, Any]:
        devices = {n: r.device for n, r in self._records.items()}
        return {
            "name": self.name,
            "port": self._settings.port,
            "state": "trouble" if self._error else "ok",
            "connected": self._fd is not None,
            "error": self._error,
            "frames_ok": self._counts["frames_ok"],
            "rejected": dict(self._rejected),
            "retransmissions": self._counts["retransmission"],
            "replays": self._counts["replay"],
            "acks_sent": self._counts["acks_sent"],
            "states_sent": self._counts["states_sent"],
            "tx_dropped": self._counts["tx_dropped"],
            "reconnects": self._counts["reconnects"],
            "offline": sorted(devices.get(n, str(n)) for n in self._supervisor.offline),
            "low_battery": sorted(r.device for r in self._records.values() if r.low_battery),
        }

    # -- Indicator --------------------------------------------------------------------

    def set_led(self, device: str, led: int) -> None:
        """Send ``STATE`` (LED state 0..4) to the node(s) of ``device``. Callable from any
        thread; a frame lost on the way is corrected by the answer to the next ``HB``."""
        loop = self._loop
        if loop is not None and _running_loop() is not loop:
            loop.call_soon_threadsafe(self.set_led, device, led)
            return
        self._leds[device] = led
        for node, record in self._records.items():
            if record.device == device:
                self._send_frame(state_frame(node, self._next_gw_seq(), led))
                self._counts["states_sent"] += 1

    def records(self) -> dict[int, NodeRecord]:
        """The nodes as the bus knows them now (the registry file may lag by ``flush_s``)."""
        return dict(self._records)

    def led(self, device: str) -> int:
        return self._leds.get(device, 0)

    # -- start-up ---------------------------------------------------------------------

    def load_keys(self) -> None:
        """Read every node's key file (blocking: call it off the loop). Raise ConfigError
        for a key that cannot be used (unreadable, not hex, empty, under 16 bytes), so the
        gateway refuses to start rather than run with nodes it cannot verify."""
        self._keys = {n.node: load_key(n.key_file) if n.key_file else None
                      for n in self._nodes.values()}
        self._keys_loaded = True

    async def _prepare(self) -> None:
        """Read key files (unless done at build) and bring the registry in line with the
        configured nodes."""
        nodes = list(self._nodes.values())
        if not self._keys_loaded:
            await asyncio.to_thread(self.load_keys)
        self._records = await asyncio.to_thread(self._sync_registry, nodes)
        for n in nodes:
            self._supervisor.watch(n.node, n.supervision_s)

    def _sync_registry(self, nodes: list[BusNode]) -> dict[int, NodeRecord]:
        known = self._registry.records()
        for n in nodes:
            old = known.get(n.node)
            if old is None or (old.device, old.key_ref) != (n.device, n.key_file):
                known[n.node] = self._registry.enroll(n.node, n.device, n.key_file)
                old = known[n.node]  # enrolment keeps replay state; so does the journal's
            newest = newest_seq(old.last_seq, self._journal_seqs.get(n.node))
            if newest != old.last_seq:
                known[n.node] = replace(old, last_seq=newest)
                self._dirty.add(n.node)
        return {n.node: known[n.node] for n in nodes}

    def _key_for(self, node: int) -> bytes | Missing | None:
        return self._keys.get(node, UNKNOWN_NODE)

    # -- the port ---------------------------------------------------------------------

    async def _connection_loop(self, sink: EventSink) -> NoReturn:
        async def serve(port: Any) -> bool:
            await self._serve_port(port, sink)
            return True  # it opened: the next failure waits reopen_min_s again

        await keep_open(
            self._settings.port, self._settings.baudrate, serve=serve,
            on_open_failed=functools.partial(self._trouble, sink),
            backoff=Backoff(first_s=self._settings.reopen_min_s,
                            cap_s=self._settings.reopen_max_s),
            open_port=self._open_port,
        )

    async def _serve_port(self, port: Any, sink: EventSink) -> None:
        self._attach(port.fileno())
        reason = f"{self._settings.port}: closed"
        try:
            await self._clear_trouble(sink)
            await self._consume(sink)
        except (serial.SerialException, OSError) as exc:
            reason = f"{self._settings.port}: {exc}"
        finally:
            self._detach()
            port.close()
        self._counts["reconnects"] += 1
        await self._trouble(sink, reason)

    def _attach(self, fd: int) -> None:
        assert self._loop is not None
        os.set_blocking(fd, False)
        self._fd, self._failure, self._paused = fd, None, False
        self._splitter = LineSplitter()
        self._outbox.clear()
        self._loop.add_reader(fd, self._on_readable)

    def _detach(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._inbox.clear()

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            return self._fail(exc)
        if not data:
            return self._fail(serial.SerialException("port closed"))
        lines = self._splitter.feed(data)
        if lines:
            self._inbox.extend(lines)
            self._wakeup.set()
        if len(self._inbox) > INBOX_HIGH and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._paused = True

    def _fail(self, exc: BaseException) -> None:
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._failure = self._failure or exc
        self._wakeup.set()

    async def _consume(self, sink: EventSink) -> None:
        """Handle lines in arrival order, all those waiting as one batch; raise the port's
        failure."""
        while True:
            if self._inbox:
                take = min(len(self._inbox), BATCH_MAX)
                lines = [self._inbox.popleft() for _ in range(take)]
                self._maybe_resume()
                await self._handle(lines, sink)
                continue
            if self._failure is not None:
                raise self._failure
            self._wakeup.clear()
            await self._wakeup.wait()

    def _maybe_resume(self) -> None:
        if self._paused and len(self._inbox) < INBOX_LOW and self._fd is not None:
            assert self._loop is not None
            if self._failure is None:
                self._loop.add_reader(self._fd, self._on_readable)
            self._paused = False

    def _send_frame(self, frame: Frame) -> None:
        data = encode_frame(frame, self._keys.get(frame.node))
        if self._fd is None or len(self._outbox) + len(data) > OUTBOX_MAX:
            self._counts["tx_dropped"] += 1
            return
        self._outbox += data
        self._flush_outbox()

    def _flush_outbox(self) -> None:
        assert self._loop is not None
        fd = self._fd
        if fd is None:
            return
        try:
            written = os.write(fd, self._outbox) if self._outbox else 0
        except BlockingIOError:
            written = 0
        except OSError as exc:
            return self._fail(exc)
        del self._outbox[:written]
        if self._outbox:
            self._loop.add_writer(fd, self._flush_outbox)
        else:
            self._loop.remove_writer(fd)

    # -- frames -----------------------------------------------------------------------

    async def _handle(self, lines: list[bytes], sink: EventSink) -> None:
        """Handle ``lines`` in order. Consecutive valid frames are settled together: their
        events are committed in one transaction, the changed registry records written once,
        and only then are their replies sent, so a burst costs one commit and one registry
        write, not one per frame. A rejected line settles the frames before it first, which
        keeps the journal in line order."""
        pending: list[_Pending] = []
        records: dict[int, NodeRecord] = {}  # the records as the pending frames leave them
        for line in lines:
            try:
                frame = decode_frame(line, self._key_for)
            except FrameError as exc:
                await self._settle(pending, sink)
                pending, records = [], {}
                await self._reject(exc, line, sink)
                continue
            self._counts["frames_ok"] += 1
            record = records.get(frame.node) or self._records[frame.node]
            keyed = self._keys.get(frame.node) is not None
            now = self._clock.wall()
            decision = decide(frame, record, keyed=keyed, policy=self._policy, now=now)
            self._counts[decision.verdict] += 1
            drafts = list(decision.drafts)
            if decision.verdict is Verdict.REPLAY:
                drafts = self._limited(self._replays, drafts)
            elif self._supervisor.seen(frame.node):
                drafts.insert(0, supervision_draft(record.device, frame.node, lost=False, now=now))
            records[frame.node] = decision.record
            pending.append(_Pending(frame, record, decision, drafts))
        await self._settle(pending, sink)

    async def _settle(self, pending: list[_Pending], sink: EventSink) -> None:
        """Commit the frames' events (one transaction), keep their records, then reply."""
        if not pending:
            return
        drafts = [d for p in pending for d in p.drafts]
        try:
            await self._record_all(drafts, sink)
        except Exception:  # a journal hiccup must not stop the bus; the nodes will retry
            first = pending[0].frame
            log.exception("event=serial_frame_failed node=%s seq=%s frames=%d",
                          first.node, first.seq, len(pending))
            return
        for p in pending:
            # the accepted seq is in the journal already (AcceptedSeqs, same transaction):
            # the registry file is only brought up to date every flush_s
            if p.decision.record != p.before:
                self._records[p.decision.record.node] = p.decision.record
                self._dirty.add(p.decision.record.node)
        for p in pending:
            self._reply(p.frame, p.before.device, p.decision.reply)
            if p.decision.verdict is Verdict.HEARTBEAT and self.on_heartbeat is not None:
                self.on_heartbeat(p.before.device, p.decision.record.last_seen or 0.0,
                                  p.frame.batt_mv)

    async def _record_all(self, drafts: list[EventDraft], sink: EventSink) -> None:
        if not drafts:
            return
        record_many = getattr(sink, "record_many", None)
        if len(drafts) > 1 and record_many is not None:
            await record_many(drafts)  # one transaction: all or none
            return
        for draft in drafts:
            await sink.record(draft)

    def _reply(self, frame: Frame, device: str, reply: Reply | None) -> None:
        if reply is Reply.ACK:
            led = ack_led(frame.type, self._leds.get(device, 0))
            self._leds[device] = led
            self._send_frame(ack_frame(frame.node, frame.seq, led))
            self._counts["acks_sent"] += 1
        elif reply is Reply.STATE:
            led = self._leds.get(device, 0)
            self._send_frame(state_frame(frame.node, self._next_gw_seq(), led))
            self._counts["states_sent"] += 1

    async def _registry_io(self, write: Callable[..., Any], *args: Any) -> Any:
        """Run one registry write on the bus's own thread (writes stay in order)."""
        return await asyncio.get_running_loop().run_in_executor(self._registry_pool, write,
                                                                *args)

    async def _reject(self, exc: FrameError, line: bytes, sink: EventSink) -> None:
        self._rejected[exc.reason] += 1
        node = exc.node
        if exc.reason == "unknown_node" and exc.type == "BOOT" and node is not None:
            await self._learn(node)
        suppressed = self._rejects.admit()
        if suppressed is None:
            return
        record = self._records.get(node) if node is not None else None
        draft = rejected_frame_draft(
            exc.reason,
            line,
            device=record.device if record else None,
            node=node,
            suppressed=suppressed,
            now=self._clock.wall(),
        )
        await self._record_quietly(sink, draft)

    async def _learn(self, node: int) -> None:
        """Learn mode: remember an unknown node's BOOT (at most once a minute per node)."""
        now = self._clock.monotonic()
        if not self._settings.learn or now - self._learned.get(node, -1e9) < 60.0:
            return
        self._learned[node] = now
        try:
            await self._registry_io(self._registry.note_pending, node)
        except Exception:
            log.exception("event=registry_write_failed node=%s", node)

    def _limited(self, limiter: RejectLimiter, drafts: list[EventDraft]) -> list[EventDraft]:
        suppressed = limiter.admit()
        if suppressed is None:
            return []
        return [replace(d, detail={**(d.detail or {}), "suppressed": suppressed}) for d in drafts]

    def _next_gw_seq(self) -> int:
        self._gw_seq = (self._gw_seq + 1) % 65536
        return self._gw_seq

    # -- trouble, supervision, deferred writes ----------------------------------------

    async def _trouble(self, sink: EventSink, reason: str) -> None:
        self._error = reason
        log.warning("event=serial_trouble reason=%s", reason)
        if not self._trouble_journaled:
            self._trouble_journaled = True
            detail = {"source": self.name, "port": self._settings.port, "reason": reason}
            await self._record_quietly(sink, EventDraft(EventType.TROUBLE, detail=detail))

    async def _clear_trouble(self, sink: EventSink) -> None:
        self._error = None
        if self._trouble_journaled:
            self._trouble_journaled = False
            detail = {"source": self.name, "port": self._settings.port}
            await self._record_quietly(sink, EventDraft(EventType.TROUBLE_CLEARED, detail=detail))

    async def _record_quietly(self, sink: EventSink, draft: EventDraft) -> bool:
        """Record ``draft``; False (logged) when the journal refused it."""
        try:
            await sink.record(draft)
        except Exception:
            log.exception("event=serial_record_failed type=%s", draft.type)
            return False
        return True

    async def _housekeeping(self, sink: EventSink) -> None:
        last_flush = self._clock.monotonic()
        while True:
            await asyncio.sleep(self._settings.poll_s)
            for node in self._supervisor.due():
                device = self._records[node].device
                draft = supervision_draft(device, node, lost=True, now=self._clock.wall())
                if not await self._record_quietly(sink, draft):
                    # not journaled: report the loss again at the next check, never drop it
                    # (a node gone silent must reach the desk as "offline")
                    self._supervisor.report_again(node)
            if self._clock.monotonic() - last_flush >= self._settings.flush_s:
                last_flush = self._clock.monotonic()
                await self._flush_dirty()
                if self.on_flush is not None:
                    await self.on_flush()

    async def _flush_dirty(self) -> None:
        records = [self._records[n] for n in self._dirty]
        self._dirty.clear()
        try:
            await self._registry_io(self._registry.save_many, records)
        except Exception:
            self._dirty.update(r.node for r in records)
            log.exception("event=registry_write_failed")

    def _flush_dirty_now(self) -> None:
        if self._dirty:
            try:
                self._registry.save_many([self._records[n] for n in self._dirty])
                self._dirty.clear()
            except Exception:
                log.exception("event=registry_write_failed")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
