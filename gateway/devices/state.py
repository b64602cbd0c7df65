"""Each device's state as ``device/<id>/state`` shows it: normal, alarm, trouble, offline.

A processor on the recorder's path: it sees every event in journal order, updates the
device's flags and returns the retained document to commit with the event, so the broker's
retained state never runs ahead of (or behind) the journal. Flags persist in the journal's
``kv`` table, so a restart keeps a tampered or offline device in that state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.clock import rfc3339
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import ProcessResult

ALARM_TYPES = {EventType.PRESS, EventType.HOLD}
LAST_SEEN_REFRESH_S = 60.0
#: a heartbeat (never journaled as an event) re-publishes ``device/<id>/state`` when the
#: published ``last_seen`` is this old, the battery moved :data:`BATTERY_STEP_MV`, or a low
#: battery recovered; the serial bus commits those refreshes together every ``flush_s``
#: (15 min), so heartbeats stay almost free on the SD card (docs/benchmarks.md)
HEARTBEAT_REFRESH_S = 3600.0
BATTERY_STEP_MV = 50
"""A change of ``last_seen`` alone republishes the device's state at most this often (s);
any change of state, battery or trouble flags republishes at once."""


@dataclass
class DeviceFlags:
    """What ``device/<id>/state`` is made of; persisted so a restart keeps it."""

    alarm: bool = False
    offline: bool = False
    tamper: bool = False
    low_battery: bool = False
    battery_mv: int | None = None
    last_seen: float | None = None

    @property
    def state(self) -> str:
        if self.alarm:
            return "alarm"
        if self.offline:
            return "offline"
        if self.tamper or self.low_battery:
            return "trouble"
        return "normal"


class DeviceStates:
    """Implements :class:`~gateway.core.ports.EventProcessor` for device state documents."""

    def __init__(self, config: SiteConfig, stored: dict[str, Any] | None = None) -> None:
        self._config = config
        self._devices = {d.id: d for d in config.devices}
        self._flags: dict[str, DeviceFlags] = {}
        self._published_seen: dict[str, float | None] = {}
        self._published_battery: dict[str, int | None] = {}
        self._refresh_due: set[str] = set()  # heartbeats worth a re-publish
        for dev_id in self._devices:
            saved = (stored or {}).get(f"device:{dev_id}")
            self._flags[dev_id] = DeviceFlags(**saved) if isinstance(saved, dict) else DeviceFlags()

    def flags(self, device_id: str) -> DeviceFlags | None:
        return self._flags.get(device_id)

    def process(self, draft: EventDraft) -> ProcessResult:
        dev_id = draft.device
        flags = self._flags.get(dev_id) if dev_id else None
        if dev_id is None or flags is None:
            return ProcessResult(draft)
        before = _snapshot(flags)
        self._apply(flags, draft)
        after = _snapshot(flags)
        if after == before or (after[:-1] == before[:-1] and not self._stale(dev_id, flags)):
            return ProcessResult(draft)  # nothing, or only a fresh last_seen: not worth a publish
        self._published_seen[dev_id] = flags.last_seen
        self._published_battery[dev_id] = flags.battery_mv
        self._refresh_due.discard(dev_id)
        return ProcessResult(
            draft,
            retained={f"device/{dev_id}/state": self.document(dev_id)},
            kv={f"device:{dev_id}": asdict(flags)},
        )

    def _stale(self, dev_id: str, flags: DeviceFlags) -> bool:
        """The published ``last_seen`` is over :data:`LAST_SEEN_REFRESH_S` behind."""
        published = self._published_seen.get(dev_id)
        return published is None or (flags.last_seen or 0) - published >= LAST_SEEN_REFRESH_S

    def _apply(self, flags: DeviceFlags, draft: EventDraft) -> None:
        t = draft.type
        if t in ALARM_TYPES or (t == EventType.OPEN and self._alarm_on_open(draft.device)):
            flags.alarm = True
        elif t == EventType.ALARM_STATE and (draft.detail or {}).get("state") == "resolved":
            flags.alarm = False
        elif t == EventType.SUPERVISION_LOST:
            flags.offline = True
        elif t == EventType.TAMPER:
            flags.tamper = True
        elif t == EventType.TAMPER_OK:
            flags.tamper = False
        elif t == EventType.LOW_BATTERY:
            flags.low_battery = True
            flags.battery_mv = draft.value or flags.battery_mv
        if t != EventType.LOW_BATTERY:
            self._note_battery(flags, _frame_battery(draft))
        if t not in (EventType.ALARM_STATE, EventType.SUPERVISION_LOST, EventType.TROUBLE):
            if t.value in _DEVICE_SEEN:
                flags.offline = False
                flags.last_seen = draft.ts
        if t == EventType.SUPERVISION_RESTORED:
            flags.offline = False

    def _alarm_on_open(self, dev_id: str | None) -> bool:
        dev = self._devices.get(dev_id or "")
        return bool(dev and dev.alarm_on_open)

    def note_seen(self, device_id: str, when: float, battery_mv: int | None) -> None:
        """A heartbeat (SPEC §2: not journaled as an event, it refreshes the node's
        last-seen time and battery): noted at once, and marked for the next
        :meth:`take_refreshed` when it is worth a write (see :data:`HEARTBEAT_REFRESH_S`)."""
        flags = self._flags.get(device_id)
        if flags is None:
            return
        was_low = flags.low_battery
        flags.last_seen = max(flags.last_seen or 0.0, when)
        self._note_battery(flags, battery_mv)
        published_seen = self._published_seen.get(device_id)
        published_mv = self._published_battery.get(device_id)
        if (was_low and not flags.low_battery) \
                or published_seen is None or flags.last_seen - published_seen >= HEARTBEAT_REFRESH_S \
                or (flags.battery_mv is not None and (published_mv is None or abs(
                    flags.battery_mv - published_mv) >= BATTERY_STEP_MV)):
            self._refresh_due.add(device_id)

    def take_refreshed(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The retained documents and ``device:`` records that heartbeats made worth a
        re-publish since the last call, as of now: committed together as one batch."""
        retained: dict[str, Any] = {}
        kv: dict[str, Any] = {}
        for dev_id in sorted(self._refresh_due):
            flags = self._flags[dev_id]
            retained[f"device/{dev_id}/state"] = self.document(dev_id)
            kv[f"device:{dev_id}"] = asdict(flags)
            self._published_seen[dev_id] = flags.last_seen
            self._published_battery[dev_id] = flags.battery_mv
        self._refresh_due.clear()
        return retained, kv

    def refresh_again(self, device_ids: list[str]) -> None:
        """A refresh batch the journal refused: offer those devices at the next call."""
        for dev_id in device_ids:
            if dev_id in self._flags:
                self._published_seen[dev_id] = None
                self._refresh_due.add(dev_id)

    def _note_battery(self, flags: DeviceFlags, battery_mv: int | None) -> None:
        """Every frame a node sends carries its battery (``BOOT``, ``PRESS``, ...): any of
        them updates ``battery_mv``, and a recovered one clears ``low_battery``."""
        if battery_mv is None or battery_mv <= 0:  # 0: mains powered, nothing to show
            return
        flags.battery_mv = battery_mv
        if flags.low_battery and self._battery_ok(battery_mv):
            flags.low_battery = False

    def _battery_ok(self, mv: int) -> bool:
        threshold = self._config.serial.low_battery_mv if self._config.serial else 0
        return mv > threshold + 100  # hysteresis: 100 mV above the threshold

    def document(self, device_id: str) -> dict[str, Any]:
        dev = self._devices[device_id]
        flags = self._flags[device_id]
        return {
            "device": dev.id,
            "ward": dev.ward,
            "room": dev.room,
            "kind": dev.kind,
            "state": flags.state,
            "battery_mv": flags.battery_mv,
            "last_seen": rfc3339(flags.last_seen) if flags.last_seen else None,
            # beyond SPEC §3's keys, so tamper and battery sensors need not guess from "trouble"
            "tamper": flags.tamper,
            "low_battery": flags.low_battery,
        }

    def all_documents(self) -> dict[str, dict[str, Any]]:
        return {f"device/{d}/state": self.document(d) for d in self._devices}


def _snapshot(flags: DeviceFlags) -> tuple[object, ...]:
    """The flags as a tuple, ``last_seen`` last (cheaper than ``asdict`` on the hot path)."""
    return (flags.alarm, flags.offline, flags.tamper, flags.low_battery, flags.battery_mv,
            flags.last_seen)


_DEVICE_SEEN = {
    "press", "hold", "release", "open", "close", "tamper", "tamper_ok", "boot",
    "low_battery", "supervision_restored",
}


def _frame_battery(draft: EventDraft) -> int | None:
    """The battery (mV) a serial frame's event carries in ``detail.batt_mv``, or None."""
    value = (draft.detail or {}).get("batt_mv")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
