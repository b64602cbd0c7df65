"""What the page shows, worked out from a :class:`MonthReport`: words, formatted times,
the points for the meeting, table rows. The template only lays it out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.report import charts
from gateway.report.devices import DeviceRow, Period
from gateway.report.incidents import Incident
from gateway.report.model import MonthReport
from gateway.report.texts import CHANNELS, KINDS, STEPS, TROUBLES, Lang, Texts
from gateway.report.upkeep import Trouble

LISTED = 6  # alarms named in one point before "…"


@dataclass(frozen=True, slots=True)
class Card:
    """One figure at the top of the report, with its tone."""

    label: str
    value: str
    sub: str = ""
    tone: str = "plain"  # plain, ok, warn, bad


@dataclass
class View:
    """What the HTML template renders: texts, cards, points and charts."""

    lang: Lang
    t: Texts
    r: MonthReport
    cards: list[Card] = field(default_factory=list)
    points: list[tuple[str, str]] = field(default_factory=list)  # (tone, text)
    svg: dict[str, str] = field(default_factory=dict)

    # -- little formatters the template calls ---------------------------------------
    def when(self, ts: float | None) -> str:
        return self.r.month.fmt(ts)

    def span_start(self, p: Period) -> str:
        """A trouble period's start; with seconds when it was short."""
        return self._precise(p.start, p)

    def span_end(self, p: Period) -> str:
        return self._precise(p.end, p)

    def _precise(self, ts: float, p: Period) -> str:
        if p.seconds >= 600:
            return self.r.month.fmt(ts)
        return self.r.month.local(ts).strftime("%d/%m %H:%M:%S")

    def dur(self, s: float | None) -> str:
        return self.t.duration(s)

    def after(self, i: Incident, ts: float | None) -> str:
        return self.t.duration(i.after(ts))

    def short(self, i: Incident, ts: float | None) -> str:
        return self.t.clock(i.after(ts))

    def ward(self, ward: str) -> str:
        return self.r.ward_name(ward)

    def kind(self, key: str) -> str:
        return self.t.pick(KINDS, key)

    def step(self, key: str) -> str:
        return self.t.pick(STEPS, key)

    def trouble(self, key: str) -> str:
        return self.t.pick(TROUBLES, key)

    def channel(self, key: str) -> str:
        return self.t.pick(CHANNELS, key)

    def code(self, i: Incident) -> str:
        return i.code or i.id[:8]

    def name(self, i: Incident) -> str:
        """``4231 (Khoa Cấp cứu, Giường 11, 02/11 09:00)``."""
        return f"{self.code(i)} ({self.ward(i.ward)}, {i.room}, {self.when(i.raised)})"

    def names(self, incidents: Sequence[Incident]) -> str:
        shown = ", ".join(self.name(i) for i in incidents[:LISTED])
        return shown + (" …" if len(incidents) > LISTED else "")

    @property
    def period(self) -> str:
        m = self.r.month
        return f"{m.fmt(m.start)[:5]}/{m.year} – {m.fmt(m.end - 1)[:5]}/{m.year}"

    @property
    def month_label(self) -> str:
        return f"{self.r.month.month:02d}/{self.r.month.year}"


def build_view(report: MonthReport, lang: Lang) -> View:
    """The :class:`View` of ``report`` in ``lang``."""
    view = View(lang, Texts(lang), report)
    view.cards = _cards(view)
    view.points = _points(view)
    view.svg = _charts(view)
    return view


def _attention(devices: Sequence[DeviceRow]) -> list[DeviceRow]:
    return [d for d in devices if d.trouble or d.walk_test_due]


def _cards(v: View) -> list[Card]:
    r, t = v.r, v.t
    totals = r.totals
    steps = {i.step.value: i for i in r.intervals}
    on_target = sum(1 for d in r.drills if d.met)
    unacked = len(r.never_police_acked)
    attention = len(_attention(r.devices))
    return [
        Card(t("kf_alarms"), str(totals.total), t("kf_breakdown", panic=totals.panic,
             duress=totals.duress, contact=totals.contact)),
        Card(t("kf_drills"), str(totals.drills),
             t("kf_of_target", n=on_target, m=len(r.drills)),
             "ok" if on_target == len(r.drills) else "warn"),
        Card(t("kf_taken"), v.dur(steps["taken"].median_s),
             f"{t('c_worst').lower()} {v.dur(steps['taken'].worst_s)}"),
        Card(t("kf_police"), v.dur(steps["police_ack"].median_s),
             t("kf_sent", n=sum(1 for i in r.alarms if i.sent_to_police))),
        Card(t("kf_unacked"), str(unacked), "", "bad" if unacked else "ok"),
        Card(t("kf_devices"), str(attention), "", "warn" if attention else "ok"),
    ]


def _points(v: View) -> list[tuple[str, str]]:
    r, t = v.r, v.t
    out: list[tuple[str, str]] = []
    if r.never_police_acked:
        out.append(("bad", t("p_unacked", n=len(r.never_police_acked),
                             list=v.names(r.never_police_acked))))
    if r.unresolved:
        out.append(("bad", t("p_unresolved", n=len(r.unresolved), list=v.names(r.unresolved))))
    if r.without_note:
        out.append(("warn", t("p_no_note", n=len(r.without_note), list=v.names(r.without_note))))
    for d in r.drills:
        if not d.met:
            out.append(("warn", t("p_drill_behind", ward=d.name, n=d.count, target=d.target)))
    out.extend(_device_points(v))
    out.extend(_gateway_points(v))
    if r.malformed:
        out.append(("bad", t("p_malformed", n=r.malformed)))
    return out or [("ok", t("p_none"))]


def _device_points(v: View) -> list[tuple[str, str]]:
    t, devices = v.t, v.r.devices
    out: list[tuple[str, str]] = []
    due = [d for d in devices if d.walk_test_due]
    if due:
        names = ", ".join(f"{d.device} ({d.room})" for d in due)
        out.append(("warn", t("p_walk_test", n=len(due), list=names)))
    for d in devices:
        if d.offline:
            still = t("p_still") if any(p.ongoing for p in d.offline) else ""
            out.append(("warn", t("p_offline", device=d.device, room=d.room,
                                  dur=v.dur(d.offline_s), still=still)))
    low = [f"{d.device} ({d.battery_mv} mV)" for d in devices if d.low_battery]
    if low:
        out.append(("warn", t("p_battery", list=", ".join(low))))
    tamper = [f"{d.device} ({d.room})" for d in devices if d.tamper]
    if tamper:
        out.append(("warn", t("p_tamper", list=", ".join(tamper))))
    return out


def _gateway_points(v: View) -> list[tuple[str, str]]:
    t, up = v.t, v.r.upkeep
    out: list[tuple[str, str]] = []
    for kind in (Trouble.BROKER, Trouble.HOTLINE, Trouble.MODEM, Trouble.SERIAL, Trouble.DISK):
        spans = up.outages(kind)
        if spans:
            total = sum(p.seconds for p in spans)
            out.append(("warn", t("p_outage", what=v.trouble(kind.value), n=len(spans),
                                  dur=v.dur(total))))
    if up.tests_due and up.tests < up.tests_due:
        out.append(("warn", t("p_tests", n=up.tests, due=up.tests_due,
                              gap=v.dur(up.longest_test_gap_s))))
    return out


def _charts(v: View) -> dict[str, str]:
    r, t = v.r, v.t
    m = r.month
    series = []
    for ward in r.ward_names:
        counts = [0] * m.days
        for i in r.alarms:
            if i.ward == ward:
                counts[m.day_of(i.raised) - 1] += 1
        series.append((r.ward_name(ward), counts))
    rows = [(v.step(i.step.value), i.values_s, i.median_s, i.p90_s) for i in r.intervals]
    drills: list[tuple[str, dict[int, bool]]] = []
    for d in r.drills:
        marks: dict[int, bool] = {}
        for i in r.drill_alarms:
            if i.ward == d.ward:
                day = m.day_of(i.raised)
                marks[day] = marks.get(day, False) or i.police_ack is not None
        drills.append((d.name, marks))
    return {
        "per_day": charts.per_day(m.days, series, t("chart_alarms"), t("chart_day")),
        "response": charts.response_strips(rows, t("chart_seconds"), t.duration),
        "drills": charts.drill_calendar(m.year, m.month, m.days, drills, t("chart_drill_ok"),
                                        t("chart_drill_noack")),
    }


def context(view: View) -> dict[str, Any]:
    """What the template receives."""
    return {"v": view, "r": view.r, "t": view.t}
