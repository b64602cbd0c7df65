"""What the gateway does with each serial bus frame (SPEC §2), without doing any I/O.

The adapter (``gateway/serialbus/bus.py``) decodes a line, asks :func:`decide` what it means for
the node's :class:`~gateway.serialbus.registry.NodeRecord`, records the drafts it gets back, persists
the new record and only then sends the reply. Supervision (:class:`Supervisor`) and the
journaling rate limit for rejected input (:class:`RejectLimiter`) are pure too: they read an
injected clock and never sleep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from gateway.core.enums import LedState
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, FrameLike, ProcessResult
from gateway.serialbus.registry import NodeRecord

SEQ_MOD = 65536

FRAME_EVENTS: Mapping[str, EventType] = {
    "PRESS": EventType.PRESS,
    "HOLD": EventType.HOLD,
    "RELEASE": EventType.RELEASE,
    "TAMPER": EventType.TAMPER,
    "TAMPER_OK": EventType.TAMPER_OK,
    "OPEN": EventType.OPEN,
    "CLOSE": EventType.CLOSE,
    "BOOT": EventType.BOOT,
}
"""Uplink frame types that become events; ``HB`` is the one that does not."""


class Verdict(StrEnum):
    """What a frame is to the bus logic."""

    NEW = "new"
    HEARTBEAT = "heartbeat"
    RETRANSMISSION = "retransmission"
    REPLAY = "replay"


class Reply(StrEnum):
    """What the gateway answers a frame with."""

    ACK = "ack"  # same seq, value = LED state
    STATE = "state"  # the gateway's own seq, value = LED state


@dataclass(frozen=True, slots=True)
class BusPolicy:
    """Site settings the decisions need. Millivolts; ``low_battery_mv`` 0 disables."""

    low_battery_mv: int = 2600
    hysteresis_mv: int = 100  # the battery must recover this far above the threshold to re-arm


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one frame: record ``drafts`` in order, keep ``record``, send ``reply``."""

    verdict: Verdict
    record: NodeRecord
    drafts: tuple[EventDraft, ...] = ()
    reply: Reply | None = None


def is_newer(seq: int, last: int) -> bool:
    """SPEC §2: ``seq`` is newer than ``last`` when ``0 < (seq - last) mod 65536 < 32768``."""
    return 0 < (seq - last) % SEQ_MOD < SEQ_MOD // 2


def decide(
    frame: FrameLike, record: NodeRecord, *, keyed: bool, policy: BusPolicy, now: float
) -> Decision:
    """Classify ``frame`` from the node of ``record``; ``now`` is unix seconds.

    A frame with the last accepted ``seq`` is a retransmission (re-ACK, no event). A keyed
    node's frame that is not newer is a replay. An unkeyed node's old ``seq`` is accepted
    as new: without a MAC a replay cannot be told from a node that lost its counter, and
    dropping a real alarm is the worse mistake.
    """
    last = record.last_seq
    if last is not None and frame.seq == last:
        seen = replace(record, last_seen=now)
        reply = None if frame.type == "HB" else Reply.ACK
        return Decision(Verdict.RETRANSMISSION, seen, (), reply)
    if keyed and last is not None and not is_newer(frame.seq, last):
        detail = {"node": frame.node, "seq": frame.seq, "last_seq": last, "frame": frame.type}
        draft = EventDraft(
            EventType.REJECTED_REPLAY, record.device, frame.seq, detail=detail, ts=now
        )
        return Decision(Verdict.REPLAY, record, (draft,), None)
    updated = replace(record, last_seq=frame.seq, last_seen=now)
    drafts: list[EventDraft] = []
    if frame.type in FRAME_EVENTS:
        drafts.append(_event(frame, record.device, now))
    updated = _battery(frame, updated, policy, drafts, now)
    if frame.type == "HB":
        return Decision(Verdict.HEARTBEAT, updated, tuple(drafts), Reply.STATE)
    return Decision(Verdict.NEW, updated, tuple(drafts), Reply.ACK)


def _event(frame: FrameLike, device: str, now: float) -> EventDraft:
    detail = {"node": frame.node, "seq": frame.seq, "batt_mv": frame.batt_mv}
    value = frame.value if frame.type == "HOLD" else 0
    return EventDraft(FRAME_EVENTS[frame.type], device, value, detail=detail, ts=now)


def _battery(
    frame: FrameLike, record: NodeRecord, policy: BusPolicy, drafts: list[EventDraft], now: float
) -> NodeRecord:
    """Note the battery; add one ``low_battery`` event per downward crossing (0 = mains)."""
    mv = frame.batt_mv
    if mv <= 0 or policy.low_battery_mv <= 0:
        return replace(record, batt_mv=mv)
    low = record.low_battery
    if not low and mv < policy.low_battery_mv:
        detail = {"node": frame.node, "threshold_mv": policy.low_battery_mv}
        drafts.append(EventDraft(EventType.LOW_BATTERY, record.device, mv, detail=detail, ts=now))
        low = True
    elif low and mv >= policy.low_battery_mv + policy.hysteresis_mv:
        low = False
    return replace(record, batt_mv=mv, low_battery=low)


SEQ_KEY = "node_seq:"
"""Journal key prefix of a node's last accepted ``seq`` (``node_seq:<node>``)."""

_ACCEPTED = frozenset(FRAME_EVENTS.values())


class AcceptedSeqs:
    """An event processor that commits a node's accepted ``seq`` with the frame's event.

    Replay protection must survive a power cut, and the ACK follows the journal commit: so
    the last accepted ``seq`` of each node travels in the same transaction as its event (one
    small journal row) instead of a registry file rewrite (and two fsyncs) per frame. The
    registry still keeps ``last_seq``; it is written lazily, and at start the newer of the
    two wins (:func:`newest_seq`)."""

    def process(self, draft: EventDraft) -> ProcessResult:
        detail = draft.detail or {}
        node, seq = detail.get("node"), detail.get("seq")
        if draft.type in _ACCEPTED and isinstance(node, int) and isinstance(seq, int):
            return ProcessResult(draft, kv={f"{SEQ_KEY}{node}": seq})
        return ProcessResult(draft)


def newest_seq(registry_seq: int | None, journal_seq: int | None) -> int | None:
    """The node's last accepted ``seq``: the registry's or the journal's, whichever is newer
    (they differ by the frames since the registry was last written)."""
    if registry_seq is None or journal_seq is None:
        return journal_seq if registry_seq is None else registry_seq
    return journal_seq if is_newer(journal_seq, registry_seq) else registry_seq


def ack_led(frame_type: str, led: int) -> int:
    """The LED state an ACK carries: a committed PRESS/HOLD means at least "alarm received"
    (:attr:`LedState.RAISED`), even before the alarm logic has said so."""
    return max(led, LedState.RAISED) if frame_type in ("PRESS", "HOLD") else led


def rejected_frame_draft(
    reason: str, line: bytes, *, device: str | None, node: int | None, suppressed: int, now: float
) -> EventDraft:
    """A ``rejected_frame`` event; ``suppressed`` says how many were counted but not
    journaled since the previous one (see :class:`RejectLimiter`)."""
    detail: dict[str, object] = {
        "reason": reason,
        "raw": "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in line[:48]),
        "suppressed": suppressed,
    }
    if node is not None:
        detail["node"] = node
    return EventDraft(EventType.REJECTED_FRAME, device, 0, detail=detail, ts=now)


def supervision_draft(device: str, node: int, *, lost: bool, now: float) -> EventDraft:
    """A node went silent past its supervision time (``lost``), or was heard again."""
    kind = EventType.SUPERVISION_LOST if lost else EventType.SUPERVISION_RESTORED
    return EventDraft(kind, device, 0, detail={"node": node}, ts=now)


class RejectLimiter:
    """Journal at most ``per_window`` rejects per ``window_s`` seconds; count all of them.

    Garbage on the line (noise, a babbling node) must not flood the journal and MQTT, but
    every reject stays visible in the counters and in the next journaled event's
    ``suppressed`` field.
    """

    def __init__(self, clock: Clock, per_window: int = 10, window_s: float = 60.0) -> None:
        self._clock = clock
        self._per_window = per_window
        self._window_s = window_s
        self._window_start: float | None = None
        self._in_window = 0
        self._suppressed = 0
        self.total = 0

    def admit(self) -> int | None:
        """Count one reject. Return None to drop it, else the number dropped before it."""
        self.total += 1
        now = self._clock.monotonic()
        if self._window_start is None or now - self._window_start >= self._window_s:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self._per_window:
            self._suppressed += 1
            return None
        self._in_window += 1
        dropped, self._suppressed = self._suppressed, 0
        return dropped


class Supervisor:
    """Which nodes have been silent past their supervision time (seconds, monotonic).

    A node is watched from :meth:`watch` (gateway start) and each :meth:`seen` restarts its
    timer. :meth:`due` reports each loss once; the next :meth:`seen` reports the restore.
    """

    def __init__(self, clock: Clock, default_s: float = 300.0) -> None:
        self._clock = clock
        self._default_s = default_s
        self._timeout: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._lost: set[int] = set()

    def watch(self, node: int, timeout_s: float | None = None) -> None:
        self._timeout[node] = timeout_s if timeout_s is not None else self._default_s
        self._last[node] = self._clock.monotonic()

    def seen(self, node: int) -> bool:
        """Note a frame from ``node``; True when that ends a supervision loss."""
        if node not in self._timeout:
            return False
        self._last[node] = self._clock.monotonic()
        if node in self._lost:
            self._lost.discard(node)
            return True
        return False

    def due(self) -> list[int]:
        """Nodes that just went silent past their time, each reported once per loss."""
        now = self._clock.monotonic()
        newly = [
            node
            for node, last in self._last.items()
            if node not in self._lost and now - last >= self._timeout[node]
        ]
        self._lost.update(newly)
        return sorted(newly)

    def report_again(self, node: int) -> None:
        """A loss :meth:`due` reported that could not be journaled: report it again."""
        if node in self._lost and node in self._timeout:
            self._lost.discard(node)
            self._last[node] = self._clock.monotonic() - self._timeout[node]

    def next_deadline(self) -> float | None:
        """The monotonic time of the next possible loss, or None if nothing is watched."""
        times = [t + self._timeout[n] for n, t in self._last.items() if n not in self._lost]
        return min(times, default=None)

    @property
    def offline(self) -> frozenset[int]:
        return frozenset(self._lost)
