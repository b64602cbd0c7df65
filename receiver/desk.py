"""The police desk: every hospital alarm the receiver holds, and what officers do with it.

:meth:`Desk.accept` stores an incoming alarm (or recognises a redelivery by its key) and
returns only once it is committed; :meth:`Desk.act` applies an officer's step ("Đã nhận",
"Đã đến nơi", "Kết thúc") and queues the acknowledgement for that site's gateway in the same
transaction. Both run on the event loop; a lock per hospital alarm keeps two deliveries or two
officers of one alarm from racing, while different alarms commit together (group commit).
Open alarms and the last two days' are kept in memory; older closed ones only on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.core.clock import rfc3339
from gateway.core.ports import Clock
from gateway.escalation.wire import PoliceAck
from receiver.config import ReceiverConfig
from receiver.feed import Feed
from receiver.model import (
    ACK_OF,
    TRANSITIONS,
    Accepted,
    AlarmRecord,
    IncomingAlarm,
    PoliceState,
    Step,
)
from receiver.store import Batch, Store, dump

log = logging.getLogger(__name__)

KEEP_S = 2 * 86400  # closed alarms stay in memory this long (s) for today's history
MAX_NOTE_CHARS = 500

DeliveryKey = tuple[str, str, str]  # (site, source, key)


@dataclass(frozen=True, slots=True)
class ActResult:
    """An officer's step: the updated record, or why it was refused (one line)."""

    record: AlarmRecord | None
    error: str | None = None
    status: int = 200


class Desk:
    """Alarm records in memory, backed by :class:`~receiver.store.Store`.

    ``on_ack(site)`` is called after an acknowledgement for ``site`` is committed (it wakes
    that site's long-poll).
    """

    def __init__(self, config: ReceiverConfig, store: Store, feed: Feed, clock: Clock,
                 on_ack: Callable[[str], None] = lambda site: None) -> None:
        self._config = config
        self._store = store
        self._feed = feed
        self._clock = clock
        self._on_ack = on_ack
        self._records: dict[int, AlarmRecord] = {}
        self._index: dict[tuple[str, str], int] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._pending: dict[DeliveryKey, asyncio.Future[Accepted]] = {}
        self.received = 0
        self.duplicates = 0

    def load(self) -> None:
        """Open alarms and recent ones from the store (after ``store.open()``)."""
        horizon = self._clock.wall() - KEEP_S
        rows = self._store.rows("SELECT doc FROM alarms WHERE state != ? OR updated >= ?",
                                str(PoliceState.CLOSED), horizon)
        for (doc,) in rows:
            self._remember(AlarmRecord.from_document(json.loads(doc)))

    # -- queries --------------------------------------------------------------------------
    def get(self, ref: int) -> AlarmRecord | None:
        return self._records.get(ref)

    def records(self) -> list[AlarmRecord]:
        return list(self._records.values())

    def open_records(self) -> list[AlarmRecord]:
        return [r for r in self._records.values() if r.open]

    def ref_text(self, ref: int) -> str:
        return f"{self._config.receiver.id}-{ref}"

    def document(self, record: AlarmRecord) -> dict[str, object]:
        site = self._config.site(record.alarm.site)
        return record.document(site.name if site else record.alarm.site)

    # -- alarms in ------------------------------------------------------------------------
    async def accept(self, alarm: IncomingAlarm) -> Accepted:
        """Store ``alarm`` durably (once per key) and show it; return the receiver's ref."""
        key: DeliveryKey = (alarm.site, str(alarm.source), alarm.key)
        pending = self._pending.get(key)
        if pending is not None:  # the same delivery is being committed right now
            first = await asyncio.shield(pending)
            return Accepted(first.ref, True)
        known = self._store.one("SELECT ref FROM deliveries WHERE site=? AND source=? AND key=?",
                                *key)
        if known is not None:
            return await self._duplicate(alarm, known[0])
        fut: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            result = await self._store_new(alarm)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: a waiting duplicate re-raises it, nobody else must
            raise
        finally:
            self._pending.pop(key, None)
        fut.set_result(result)
        return result

    async def _duplicate(self, alarm: IncomingAlarm, ref: int | None) -> Accepted:
        self.duplicates += 1
        batch = Batch()
        self._store.event(batch, self._clock.wall(), "alarm_duplicate", alarm.site,
                          {"key": alarm.key, "alarm_id": alarm.alarm_id, "ref": ref})
        await self._store.queue(batch)
        log.info("event=alarm_duplicate site=%s key=%s", alarm.site, alarm.key)
        return Accepted(self.ref_text(ref) if ref else self._test_ref(alarm.key), True)

    async def _store_new(self, alarm: IncomingAlarm) -> Accepted:
        if alarm.is_test:
            return await self._store_test(alarm)
        async with self._lock(alarm.site, alarm.alarm_id):
            now = self._clock.wall()
            ts = rfc3339(now)
            current = self._current(alarm.site, alarm.alarm_id)
            batch = Batch()
            if current is None:
                ref = self._store.allocate("alarms")
                record = AlarmRecord(ref, alarm, ts, PoliceState.NEW,
                                     (Step(ts, PoliceState.NEW, f"site:{alarm.site}"),))
                batch.add("INSERT INTO alarms(ref, site, alarm_id, state, received, updated, doc)"
                          " VALUES (?,?,?,?,?,?,?)", ref, alarm.site, alarm.alarm_id,
                          str(record.state), now, now, dump(self.document(record)))
            else:
                record = current.redelivered(alarm, ts)
                batch.add("UPDATE alarms SET state=?, updated=?, doc=? WHERE ref=?",
                          str(record.state), now, dump(self.document(record)), record.ref)
            batch.add("INSERT INTO deliveries(site, source, key, ref, ts) VALUES (?,?,?,?,?)",
                      alarm.site, str(alarm.source), alarm.key, record.ref, now)
            self._store.event(batch, now, "alarm_received", alarm.site, {
                "ref": record.ref, "key": alarm.key, "alarm_id": alarm.alarm_id,
                "code": alarm.code, "type": alarm.type, "drill": alarm.drill,
                "source": str(alarm.source), "body": alarm.raw or alarm.to_dict()})
            await self._store.queue(batch)
            self.received += 1
            self._remember(record)
        log.info("event=alarm_received site=%s ref=%d code=%s type=%s key=%s", alarm.site,
                 record.ref, alarm.code, alarm.type, alarm.key)
        self._feed.publish("alarm", self.document(record))
        self._feed.publish("event", self._history_line("alarm_received", record, ts))
        return Accepted(self.ref_text(record.ref), False)

    async def _store_test(self, alarm: IncomingAlarm) -> Accepted:
        now = self._clock.wall()
        batch = Batch()
        batch.add("INSERT INTO deliveries(site, source, key, ref, ts) VALUES (?,?,?,NULL,?)",
                  alarm.site, str(alarm.source), alarm.key, now)
        self._store.event(batch, now, "test_report", alarm.site,
                          {"key": alarm.key, "body": alarm.raw or alarm.to_dict()})
        await self._store.queue(batch)
        self._feed.publish("event", {"ts": rfc3339(now), "type": "test_report",
                                     "site": alarm.site, "drill": alarm.drill})
        return Accepted(self._test_ref(alarm.key), False)

    def _test_ref(self, key: str) -> str:
        return f"{self._config.receiver.id}-test-{key[:8]}"

    def _current(self, site: str, alarm_id: str) -> AlarmRecord | None:
        ref = self._index.get((site, alarm_id))
        if ref is not None:
            return self._records[ref]
        row = self._store.one("SELECT doc FROM alarms WHERE site=? AND alarm_id=?", site, alarm_id)
        if row is None:
            return None
        return AlarmRecord.from_document(json.loads(row[0]))

    # -- officers' steps ------------------------------------------------------------------
    async def act(self, ref: int, state: PoliceState, officer: str, note: str = "") -> ActResult:
        """Apply one step; the ack for the hospital's gateway commits with it."""
        record = self._records.get(ref)
        if record is None:
            return ActResult(None, f"unknown alarm {ref}", 404)
        note = note.strip()[:MAX_NOTE_CHARS]
        async with self._lock(record.alarm.site, record.alarm.alarm_id):
            record = self._records[ref]
            if state not in TRANSITIONS[record.state]:
                return ActResult(record, f"cannot go from {record.state} to {state}", 409)
            if state == PoliceState.CLOSED and not note:
                return ActResult(record, "closing needs a note", 400)
            now = self._clock.wall()
            updated = record.step(state, rfc3339(now), officer, note)
            ack = PoliceAck(self._store.allocate("acks"), record.alarm.key,
                            record.alarm.alarm_id, record.alarm.code, ACK_OF[state], officer,
                            rfc3339(now), note)
            batch = Batch()
            batch.add("UPDATE alarms SET state=?, updated=?, doc=? WHERE ref=?", str(state), now,
                      dump(self.document(updated)), ref)
            batch.add("INSERT INTO acks(cursor, site, ts, body) VALUES (?,?,?,?)", ack.cursor,
                      record.alarm.site, now, dump(ack.to_dict()))
            self._store.event(batch, now, "officer_action", record.alarm.site, {
                "ref": ref, "alarm_id": record.alarm.alarm_id, "code": record.alarm.code,
                "state": str(state), "by": officer, "note": note, "cursor": ack.cursor})
            await self._store.queue(batch)
            self._remember(updated)
        log.info("event=officer_action site=%s ref=%d state=%s by=%r cursor=%d",
                 record.alarm.site, ref, state, officer, ack.cursor)
        self._on_ack(record.alarm.site)
        self._feed.publish("alarm", self.document(updated))
        self._feed.publish("event", self._history_line("officer_action", updated,
                                                       rfc3339(now)))
        return ActResult(updated)

    # -- helpers --------------------------------------------------------------------------
    def _lock(self, site: str, alarm_id: str) -> asyncio.Lock:
        return self._locks.setdefault((site, alarm_id), asyncio.Lock())

    def _remember(self, record: AlarmRecord) -> None:
        self._records[record.ref] = record
        self._index[(record.alarm.site, record.alarm.alarm_id)] = record.ref

    def forget_old(self) -> int:
        """Drop closed alarms older than :data:`KEEP_S` from memory; returns how many."""
        horizon = rfc3339(self._clock.wall() - KEEP_S)
        old = [r for r in self._records.values()
               if not r.open and r.history and r.history[-1].ts < horizon]
        for record in old:
            del self._records[record.ref]
            self._index.pop((record.alarm.site, record.alarm.alarm_id), None)
            self._locks.pop((record.alarm.site, record.alarm.alarm_id), None)
        return len(old)

    def _history_line(self, type_: str, record: AlarmRecord, ts: str) -> dict[str, object]:
        last = record.history[-1]
        return {"ts": ts, "type": type_, "site": record.alarm.site, "ref": record.ref,
                "code": record.alarm.code, "alarm_type": record.alarm.type,
                "drill": record.alarm.drill, "state": str(last.state), "by": last.by,
                "note": last.note}
