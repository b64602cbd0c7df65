"""What each gateway event becomes in SIA DC-03 terms (SPEC §7), sans-I/O.

The zone is the device's number in the config (its ``zone``, else its position in
``devices``, from 1); the area (``ri``) is the ward's position in ``wards``, from 1; the
text names ward and room in ASCII. A site may map any event to another DC-03 code in
``[escalation.dc09.codes]``; ``check-config`` accepts only codes of the DC-03 list
(:mod:`gateway.core.sia`).
"""

from __future__ import annotations

from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.events import Event, EventType
from gateway.core.sia import COMM_SOURCES, DEFAULT_CODES
from gateway.escalation.dc09.codec import SiaEvent


class Mapper:
    """Turns alarms and journal events into :class:`SiaEvent` for one site's config."""

    def __init__(self, config: SiteConfig, overrides: dict[str, str] | None = None) -> None:
        self.codes = {**DEFAULT_CODES, **(overrides or {})}
        self._config = config
        self._zones = {d.id: (getattr(d, "zone", None) or i)
                       for i, d in enumerate(config.devices, start=1)}
        self._areas = {w.id: i for i, w in enumerate(config.wards, start=1)}

    def zone(self, device: str | None) -> int | None:
        return self._zones.get(device or "")

    def area(self, ward: str | None) -> int | None:
        return self._areas.get(ward or "")

    def place(self, ward: str | None, room: str | None) -> str:
        """``<ward name>, <room>`` (folded to ASCII by :class:`SiaEvent`)."""
        w = self._config.ward(ward or "")
        name = w.name if w else (ward or "")
        return ", ".join(p for p in (name, room) if p)

    def alarm(self, alarm: dict[str, Any], *, restore: bool = False) -> SiaEvent:
        """One alarm (the plan's snapshot: type, drill, device, ward, room)."""
        kind = "drill" if alarm.get("drill") else str(alarm.get("type") or "panic")
        if kind not in ("panic", "duress", "intrusion", "door", "drill"):
            kind = "panic"
        key = f"{kind}_restore" if restore and kind != "drill" else kind
        return SiaEvent(code=self.codes[key], zone=self.zone(alarm.get("device")),
                        area=self.area(alarm.get("ward")),
                        text=self.place(alarm.get("ward"), alarm.get("room")))

    def event(self, event: Event) -> SiaEvent | None:
        """A device's or the gateway's own event worth reporting to the centre, or None."""
        key = _EVENT_KEYS.get(event.type)
        if event.type in (EventType.TROUBLE, EventType.TROUBLE_CLEARED):
            return self._trouble(event)
        if key is None:
            return None
        if event.device is None and key != "periodic_test":
            return None
        return SiaEvent(code=self.codes[key], zone=self.zone(event.device),
                        area=self.area(event.ward), text=self.place(event.ward, event.room)
                        if event.device else "")

    def _trouble(self, event: Event) -> SiaEvent:
        detail = event.detail or {}
        source = str(detail.get("source", "gateway"))
        comm = source.split(":")[0] in COMM_SOURCES
        key = ("comm_trouble" if comm else "trouble") + (
            "_restore" if event.type == EventType.TROUBLE_CLEARED else "")
        reason = str(detail.get("reason", ""))
        return SiaEvent(code=self.codes[key], text=f"{source}: {reason}" if reason else source)


_EVENT_KEYS: dict[EventType, str] = {
    EventType.TAMPER: "tamper", EventType.TAMPER_OK: "tamper_restore",
    EventType.LOW_BATTERY: "low_battery",
    EventType.SUPERVISION_LOST: "supervision_lost",
    EventType.SUPERVISION_RESTORED: "supervision_restored",
    EventType.TEST_REPORT: "periodic_test",
}
