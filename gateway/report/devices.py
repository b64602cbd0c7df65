"""The devices over the month: how each was used and how healthy it was, which ones
nobody pressed or tested (a walk test is due), and each ward's drills against the site's
target (``[drills] per_ward_per_month``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gateway.config.schema import SiteConfig
from gateway.report.incidents import Incident
from gateway.report.source import TimelineRow

BUTTON_KINDS = frozenset({"panic_button", "duress_button", "bed_call"})
BUTTON_INPUTS = ("press", "hold")
CONTACT_INPUTS = ("open", "close")


@dataclass(frozen=True, slots=True)
class Period:
    """A span of trouble in unix seconds; ``ongoing`` when it had not ended by the end."""

    start: float
    end: float
    ongoing: bool = False
    what: str = ""

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device's month: presses, drills, trouble and battery."""

    device: str
    ward: str
    room: str
    kind: str
    presses: int  # real presses and holds (or openings, for a contact)
    drill_presses: int
    alarms: int  # real alarms raised
    drills: int  # drill alarms raised
    tamper: int
    low_battery: int
    battery_mv: int | None  # the last low-battery reading
    offline: tuple[Period, ...] = ()

    @property
    def offline_s(self) -> float:
        return sum(p.seconds for p in self.offline)

    @property
    def walk_test_due(self) -> bool:
        """Not pressed (or opened) once in the month, drills included."""
        return self.presses + self.drill_presses == 0

    @property
    def trouble(self) -> bool:
        return bool(self.tamper or self.low_battery or self.offline)


@dataclass(frozen=True, slots=True)
class WardDrills:
    """One ward's drills against its target, and how many the police acknowledged."""

    ward: str
    name: str
    target: int
    days: tuple[int, ...]  # local day of the month of each drill, in order
    police_acked: int  # drills the police acknowledged (the whole chain worked)

    @property
    def count(self) -> int:
        return len(self.days)

    @property
    def met(self) -> bool:
        return self.count >= self.target


@dataclass
class _Counts:
    real: dict[str, int] = field(default_factory=dict)
    drill: dict[str, int] = field(default_factory=dict)


def device_rows(config: SiteConfig, counts: Iterable[tuple[str, str, bool, int]],
                health: Sequence[TimelineRow], incidents: Sequence[Incident],
                start: float, end: float) -> tuple[DeviceRow, ...]:
    """One row per configured device (and per unknown device the journal names)."""
    by_device: dict[str, _Counts] = {}
    for device, type_, drill, n in counts:
        c = by_device.setdefault(device, _Counts())
        side = c.drill if drill else c.real
        side[type_] = side.get(type_, 0) + n
    known = {d.id: (d.ward, d.room, d.kind) for d in config.devices}
    extra = {i.device: (i.ward, i.room, "?") for i in incidents if i.device not in known}
    extra.update({d: ("", "", "?") for d in by_device if d not in known and d not in extra})
    rows = []
    for dev_id, (ward, room, kind) in {**known, **extra}.items():
        c = by_device.get(dev_id, _Counts())
        inputs = BUTTON_INPUTS if kind in BUTTON_KINDS or kind == "?" else CONTACT_INPUTS
        mine = [r for r in health if r.device == dev_id]
        lows = [r for r in mine if r.type == "low_battery"]
        rows.append(DeviceRow(
            dev_id, ward, room, kind,
            presses=sum(c.real.get(t, 0) for t in inputs),
            drill_presses=sum(c.drill.get(t, 0) for t in inputs),
            alarms=sum(1 for i in incidents if i.device == dev_id and not i.drill),
            drills=sum(1 for i in incidents if i.device == dev_id and i.drill),
            tamper=c.real.get("tamper", 0) + c.drill.get("tamper", 0),
            low_battery=len(lows), battery_mv=lows[-1].value if lows else None,
            offline=periods(mine, "supervision_lost", "supervision_restored", start, end),
        ))
    return tuple(rows)


def periods(rows: Iterable[TimelineRow], on: str, off: str, start: float, end: float,
            key: str = "") -> tuple[Period, ...]:
    """Spans between ``on`` and ``off`` events; an ``off`` with no ``on`` before it in
    the month began before the month, an ``on`` never cleared is ongoing at ``end``."""
    out: list[Period] = []
    began: float | None = None
    seen_any = False
    for r in rows:
        if r.type == on and began is None:
            began = r.ts
        elif r.type == off:
            if began is not None:
                out.append(Period(began, r.ts, what=key))
            elif not seen_any:
                out.append(Period(start, r.ts, what=key))
            began = None
        seen_any = True
    if began is not None:
        out.append(Period(began, end, ongoing=True, what=key))
    return tuple(out)


def ward_drills(config: SiteConfig, incidents: Sequence[Incident],
                day: Callable[[float], int]) -> tuple[WardDrills, ...]:
    """Each configured ward's drills; ``day(ts)`` gives the local day of the month."""
    target = config.drills.per_ward_per_month
    out = []
    for ward in config.wards:
        drills = [i for i in incidents if i.drill and i.ward == ward.id]
        out.append(WardDrills(ward.id, ward.name, target, tuple(day(i.raised) for i in drills),
                              sum(1 for i in drills if i.police_ack is not None)))
    return tuple(out)
