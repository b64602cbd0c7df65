"""The month's figures, checked against what the November script did through the gateway."""

from __future__ import annotations

import time

import pytest

from gateway.report.incidents import AlarmKind
from gateway.report.model import MonthReport, TypeCounts, build_report
from gateway.report.period import Month
from gateway.report.upkeep import Trouble
from report.conftest import BuiltMonth
from report.month_rig import POLICE, at

NOVEMBER = Month(2026, 11, "Asia/Ho_Chi_Minh")


@pytest.fixture(scope="module")
def report(november_journal: BuiltMonth) -> MonthReport:
    return build_report(november_journal.config, november_journal.journal, NOVEMBER,
                        time.time())


def codes(report: MonthReport, ids: list[str]) -> list[str]:
    by_id = {i.id: i.code for i in report.incidents}
    return [by_id[i] for i in ids]


def test_alarms_by_ward_and_type(report: MonthReport, november_journal: BuiltMonth) -> None:
    ids = november_journal.ids
    assert report.by_ward == {
        "cap-cuu": TypeCounts(panic=3, duress=2, contact=0, mass=0, drills=2),
        "kham-benh": TypeCounts(panic=4, duress=0, contact=2, mass=3, drills=1),
        "noi": TypeCounts(),
    }
    assert report.by_device["cc-1"] == TypeCounts(panic=3, duress=1, drills=1)
    # October's alarm (resolved on 1 November) and December's are not November's
    assert len(report.alarms) == 11 and len(report.drill_alarms) == 3
    a7 = next(i for i in report.incidents if i.id == ids["A7"])
    assert a7.kind == AlarmKind.DURESS and a7.device == "cc-1"  # a held panic button
    assert all(len(i.code) == 4 for i in report.incidents)


def test_response_times(report: MonthReport, november_journal: BuiltMonth) -> None:
    ids = november_journal.ids
    steps = {i.step.value: i for i in report.intervals}
    taken, delivered, police, resolved = (steps[k] for k in
                                          ("taken", "delivered", "police_ack", "resolved"))
    assert (taken.count, taken.median_s, taken.p90_s, taken.worst_s) == (11, 40, 100, 150)
    assert taken.worst[0][0].id == ids["A3"]
    # A5's SMS went out while the hotline retried: somewhere in its 50 s outage
    assert (delivered.count, delivered.median_s, delivered.p90_s, delivered.worst_s) == (
        9, 0, 120, 120)
    assert delivered.worst[0][0].id == ids["A3"]  # the desk missed it: the timer sent it
    assert (police.count, police.median_s, police.p90_s, police.worst_s) == (8, 90, 200, 200)
    assert police.worst[0][0].id == ids["A5"]
    assert (resolved.count, resolved.median_s, resolved.p90_s, resolved.worst_s) == (
        11, 1500, 1800, 1800)
    a9 = next(i for i in report.incidents if i.id == ids["A9"])
    assert a9.after(a9.resolved) == 1800  # resolved after midnight on 1 December
    mass = [i for i in report.incidents if i.id in ids["A6"]]
    assert [i.after(i.taken) for i in mass] == [60, 50, 40]
    assert [i.after(i.police_ack) for i in mass] == [120, 110, 100]
    assert all(i.mass and i.police_by == f"police:{POLICE}" for i in mass)


def test_what_the_meeting_must_discuss(report: MonthReport,
                                       november_journal: BuiltMonth) -> None:
    ids = november_journal.ids
    assert [i.id for i in report.never_police_acked] == [ids["A3"]]
    assert [i.id for i in report.without_note] == [ids["A2"]]
    assert report.unresolved == ()
    a4 = next(i for i in report.incidents if i.id == ids["A4"])
    assert a4.kind == AlarmKind.CONTACT and not a4.sent_to_police and a4.taken is not None


def test_escalation_channels(report: MonthReport, november_journal: BuiltMonth) -> None:
    rows = {(r.channel, r.target): r for r in report.channels.rows}
    [http] = [r for (ch, _), r in rows.items() if ch == "http"]
    # 7 real escalations + 3 drills; A5: 500, 500 (round given up), 500, 200
    assert (http.attempts, http.delivered, http.retried, http.failed, http.drills) == (
        13, 10, 3, 0, 3)
    for number in (POLICE, "0902222222"):
        sms = rows[("sms", number)]
        assert (sms.attempts, sms.delivered, sms.retried, sms.failed) == (10, 10, 0, 0)
    assert report.channels.sms_sent == 20 and report.channels.calls == ()
    # every SMS is several UCS2 parts (Vietnamese); the report's count is the phones'
    assert report.channels.sms_parts == november_journal.ids["sms_parts"] > 20
    assert report.channels.cost(350) == 350 * november_journal.ids["sms_parts"]


def test_devices_and_drills(report: MonthReport) -> None:
    devices = {d.device: d for d in report.devices}
    assert {d.device for d in report.devices if d.walk_test_due} == {"cc-3", "noi-1", "noi-2"}
    [kb2] = devices["kb-2"].offline
    assert (kb2.start, kb2.seconds, kb2.ongoing) == (at(8, 3), 2.5 * 3600, False)
    [cc3] = devices["cc-3"].offline
    assert (cc3.start, cc3.end, cc3.ongoing) == (at(27, 22), NOVEMBER.end, True)
    assert (devices["cc-3"].low_battery, devices["cc-3"].battery_mv) == (1, 2480)
    assert devices["cc-3"].tamper == 1 and devices["kb-1"].tamper == 0
    assert (devices["cc-1"].presses, devices["cc-1"].drill_presses) == (5, 1)  # 4 + a hold
    drills = {d.ward: d for d in report.drills}
    assert (drills["cap-cuu"].days, drills["cap-cuu"].police_acked) == ((12, 26), 1)
    assert drills["kham-benh"].days == (12,) and drills["kham-benh"].met
    assert drills["noi"].count == 0 and not drills["noi"].met


def test_gateway_upkeep(report: MonthReport) -> None:
    up = report.upkeep
    assert up.restarts == (at(16, 4), at(24, 4))
    [broker] = up.outages(Trouble.BROKER)
    assert (broker.start, broker.end) == (at(22, 13), at(22, 13, 20))
    [hotline] = up.outages(Trouble.HOTLINE)
    # the second failed attempt (10 s back-off) gave up the round; 30 s pause; 500; 10 s; 200
    assert (hotline.start, hotline.seconds) == (at(10, 8) + 10, 40)
    assert (up.tests, up.tests_due, up.longest_test_gap_s) == (28, 30, 72 * 3600)
    assert report.rejected["rejected_command"] == 1
    assert report.covers_month
