"""The console's live view of the journal: a snapshot for a page that connects, then every
change as it is committed.

A journal listener wakes :meth:`LiveFeed.run` after each group commit; it reads the retained
documents changed since its version cursor (``alarm/<id>``, ``device/<id>/state``) and the
new events, and puts them, already serialised, on every connected page's queue. A page whose
queue overflows (a stalled browser) is dropped; its EventSource reconnects and starts again
from a fresh snapshot, so nothing it shows is ever stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.alarms.policy import IMMEDIATE, decide
from gateway.config.schema import SiteConfig
from gateway.core.clock import rfc3339
from gateway.core.ports import Clock
from gateway.journal.store import Journal

log = logging.getLogger(__name__)

#: event types worth a line in "today's history" (alarm trails come from the alarm documents)
HISTORY_TYPES = frozenset({
    "press", "hold", "alarm_state", "escalation_attempt", "police_reply", "tamper",
    "tamper_ok", "low_battery", "supervision_lost", "supervision_restored", "trouble",
    "trouble_cleared", "rejected_command", "gateway_start", "login_failed",
})
HISTORY_LIMIT = 500
QUEUE_SIZE = 1000
HEALTH_EVERY_S = 5.0

Message = tuple[str, str]  # (SSE event name, JSON data)


class LiveFeed:
    """Fans committed changes out to the connected pages. ``start()`` on the loop first."""

    def __init__(self, journal: Journal, config: SiteConfig, clock: Clock,
                 health: Callable[[], dict[str, Any]],
                 police_due: Callable[[str], float | None] = lambda alarm_id: None) -> None:
        self._journal = journal
        self._config = config
        self._clock = clock
        self._health = health
        self._police_due = police_due
        self._clients: set[asyncio.Queue[Message | None]] = set()
        self._wake = asyncio.Event()
        self._version = 0
        self._seq = 0
        self.dropped = 0

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._wake = asyncio.Event()
        while rows := self._journal.retained_after(self._version, 500):
            self._version = rows[-1][0]
        self._seq = self._journal.last_seq
        self._journal.add_listener(self._wake.set)

    def stop(self) -> None:
        """Forget the journal and end every page's stream."""
        self._journal.remove_listener(self._wake.set)
        for queue in list(self._clients):
            _put_end(queue)
        self._clients.clear()

    async def run(self) -> None:
        """Push changes as they are committed and the gateway's health every few seconds."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_EVERY_S):  # not wait_for (gateway.mqtt.link)
                    await self._wake.wait()
            self._wake.clear()
            try:
                self.pump()
                if self._clients:
                    self._broadcast("health", self.health_message())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=console_feed_failed")

    # -- pages ------------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[Message | None]:
        queue: asyncio.Queue[Message | None] = asyncio.Queue(QUEUE_SIZE)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message | None]) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- reading the journal ----------------------------------------------------------------
    def pump(self) -> None:
        """Read what was committed since the last call and broadcast it."""
        while rows := self._journal.retained_after(self._version, 500):
            self._version = rows[-1][0]
            for _, topic, payload in rows:
                parts = topic.split("/")
                if len(parts) == 2 and parts[0] == "alarm":
                    self._broadcast("alarm", self._alarm(parts[1], payload))
                elif len(parts) == 3 and parts[0] == "device" and parts[2] == "state" \
                        and payload is not None:
                    self._send("device", payload)
        while events := self._journal.events_after(self._seq, 500):
            self._seq = events[-1].seq
            for event in events:
                if str(event.type) in HISTORY_TYPES:
                    self._broadcast("event", event.to_dict())

    def _alarm(self, alarm_id: str, payload: str | dict[str, Any] | None) -> dict[str, Any]:
        """The alarm document plus ``police_due_at`` (when the police timer fires, RFC 3339,
        or None when no timer runs) and ``urgency``: ``critical`` for duress and for alarms
        the site sends to the police at once, else ``normal`` (the page's colour and sound)."""
        if payload is None:
            return {"id": alarm_id, "deleted": True}
        doc = json.loads(payload) if isinstance(payload, str) else dict(payload)
        due = self._police_due(alarm_id) if doc.get("state") == "raised" else None
        doc["police_due_at"] = rfc3339(due) if due else None
        doc["urgency"] = self._urgency(doc)
        return doc

    def _urgency(self, doc: dict[str, Any]) -> str:
        if doc.get("type") == "duress":
            return "critical"
        if doc.get("drill"):
            return "normal"
        device = self._config.device(str(doc.get("device")))
        kind = device.kind if device is not None else ""
        rule = decide(self._config.policy, doc.get("ward"), kind, str(doc.get("type")),
                      drill=False)
        return "critical" if rule.mode == IMMEDIATE else "normal"

    def _broadcast(self, name: str, data: dict[str, Any]) -> None:
        if self._clients:
            self._send(name, json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def _send(self, name: str, text: str) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait((name, text))
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("event=console_client_dropped reason=queue_full")
                self._clients.discard(queue)
                _put_end(queue)

    def clock_message(self) -> dict[str, Any]:
        return {"now": rfc3339(self._clock.wall())}

    def health_message(self) -> dict[str, Any]:
        return {**self.clock_message(), "health": self._health()}

    async def snapshot(self) -> dict[str, Any]:
        """Everything a page shows, as of now: open alarms and today's, every device's
        state, the gateway's health and today's history (oldest first)."""
        day_start = self.day_start()
        history = await asyncio.to_thread(_read_history, self._journal.path, day_start)
        # read after the await, so nothing committed meanwhile is missing from the documents
        alarms = []
        for topic, doc in self._journal.retained_all("alarm/").items():
            if topic.count("/") == 1 and isinstance(doc, dict) and _wanted(doc, day_start):
                alarms.append(self._alarm(topic.split("/")[1], doc))
        devices = [d for t, d in self._journal.retained_all("device/").items()
                   if t.endswith("/state")]
        return {
            **self.health_message(),
            "day_start": rfc3339(day_start),
            "site": self._site(),
            "alarms": alarms,
            "devices": devices,
            "history": history,
        }

    def day_start(self) -> float:
        """Unix seconds of the last local midnight in the site's time zone."""
        try:
            zone = ZoneInfo(self._config.site.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("Asia/Ho_Chi_Minh")
        now = datetime.fromtimestamp(self._clock.wall(), tz=zone)
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def _site(self) -> dict[str, Any]:
        c = self._config
        return {
            "id": c.site.id,
            "name": c.site.name,
            "timezone": c.site.timezone,
            "desk_phone": c.site.security_desk_phone,
            "police_numbers": list(c.escalation.sms.numbers) if c.escalation.sms else [],
            "wards": {w.id: w.name for w in c.wards},
            "devices": {d.id: {"name": d.name, "ward": d.ward, "room": d.room, "kind": d.kind}
                        for d in c.devices},
        }


def _wanted(alarm: dict[str, Any], day_start: float) -> bool:
    """Open alarms, and alarms raised today (for the history)."""
    if alarm.get("state") != "resolved":
        return True
    raised = alarm.get("raised_at")
    return isinstance(raised, str) and raised >= rfc3339(day_start)


def _read_history(path: Path, since: float) -> list[dict[str, Any]]:
    """Today's notable events, oldest first (at most the last ``HISTORY_LIMIT``); blocking."""
    marks = ",".join("?" * len(HISTORY_TYPES))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                f"SELECT body FROM events WHERE ts >= ? AND type IN ({marks}) "
                "ORDER BY seq DESC LIMIT ?", (since, *sorted(HISTORY_TYPES), HISTORY_LIMIT),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.error("event=console_history_failed error=%r", str(exc))
        return []
    out = []
    for (body,) in reversed(rows):
        event = json.loads(body)
        event.pop("_ts", None)
        out.append(event)
    return out


def _put_end(queue: asyncio.Queue[Message | None]) -> None:
    """Tell a page's stream to end, even if its queue is full."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
