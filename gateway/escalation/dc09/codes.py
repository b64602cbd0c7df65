"""What each gateway event becomes in SIA DC-03 terms (SPEC §7), sans-I/O.

The zone is the device's number in the config (its ``zone``, else its position in
``devices``, from 1); the area (``ri``) is the ward's position in ``wards``, from 1; the
text names ward and room in ASCII. A site may map any event to another DC-03 code in
``[escalation.dc09.codes]``; ``check-config`` accepts only codes of the DC-03 list below.
"""

from __future__ import annotations

from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.events import Event, EventType
from gateway.escalation.dc09.codec import SiaEvent

#: The SIA DC-03 event codes (two letters each), as receivers know them.
KNOWN_CODES = frozenset("""
AA AB AF AN AR AS AT BA BB BC BD BE BG BH BJ BM BR BS BT BU BV BX BZ CA CB CC CD CE CF CG CI
CJ CK CL CM CO CP CQ CR CS CT CW CX CZ DA DB DC DD DE DF DG DH DI DJ DK DL DM DN DO DP DQ DR
DS DT DU DV DW DX DY DZ EA EE EJ EM EN ER ES ET EX EZ FA FB FC FG FH FI FJ FK FL FM FQ FR FS
FT FU FV FW FX FY FZ GA GB GH GJ GR GS GT GU GX HA HB HH HJ HR HS HT HU IA IR JA JC JD JH JK
JL JO JP JR JS JT JV JX JY JZ KA KB KH KJ KR KS KT KU LB LD LE LF LR LS LT LU LX MA MB MH MI
MJ MR MS MT MU NA NB NC ND NE NF NL NM NO NP NR NS NT OA OB OC OG OH OI OJ OK OL OP OQ OR OS
OT OU OV OZ PA PB PC PD PE PF PG PH PJ PO PR PS PT PU QA QB QH QJ QR QS QT QU RA RB RC RD RN
RO RP RR RS RT RU RX RY SA SB SC SH SJ SM SR SS ST SU TA TB TC TE TH TJ TP TR TS TT TU TW TX
TZ UA UB UG UH UJ UR US UT UU UX UY UZ VI VO VR VT VX VY VZ WA WB WH WJ WR WS WT WU XA XC XE
XF XH XI XJ XL XM XQ XR XS XT XW XX YA YB YC YD YE YF YG YH YI YJ YK YM YN YO YP YQ YR YS YT
YU YW YX YY YZ ZA ZB ZH ZJ ZR ZS ZT ZU ZY ZZ""".split())

#: Our events and the DC-03 code each is sent as, unless the site maps it otherwise.
DEFAULT_CODES: dict[str, str] = {
    "panic": "PA", "panic_restore": "PR",  # panic alarm / its restoral
    "duress": "HA", "duress_restore": "HR",  # hold-up (duress) alarm
    "intrusion": "BA", "intrusion_restore": "BR",  # a sensor's alarm
    "door": "BA", "door_restore": "BR",  # a door contact's alarm
    "drill": "RX",  # a drill alarm: a manual test, never a real alarm at the centre
    "tamper": "TA", "tamper_restore": "TR",
    "low_battery": "XT", "battery_restore": "XR",  # a node's (transmitter's) battery
    "supervision_lost": "EM", "supervision_restored": "EN",  # a node gone silent / back
    "comm_trouble": "YS", "comm_trouble_restore": "YK",  # hotline, modem, a DC-09 link
    "trouble": "IA", "trouble_restore": "IR",  # any other trouble of the gateway
    "periodic_test": "RP",
}

COMM_SOURCES = ("hotline", "modem", "dc09")


def code_problems(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, reason)`` for every entry of a site's code mapping that cannot be used."""
    out: list[tuple[str, str]] = []
    for key, code in mapping.items():
        if key not in DEFAULT_CODES:
            out.append((key, f"unknown event; one of {', '.join(sorted(DEFAULT_CODES))}"))
        elif not isinstance(code, str) or code not in KNOWN_CODES:
            out.append((key, f"{code!r} is not a SIA DC-03 event code (two capital letters "
                             "from the DC-03 list, e.g. PA, HA, TA)"))
    return out


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
