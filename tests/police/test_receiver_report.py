"""``alarm-receiver report``: a November at the station, scripted through a real receiver
on a fake clock (signed POSTs from two hospitals, officers' steps through the desk, silence
that the supervision turns into a link loss, a forged request), checked in the figures and
in the page the station prints."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.core.clock import ManualClock
from gateway.report.period import Month
from receiver.config import load_config
from receiver.journal_reader import JOURNAL_FILE
from receiver.model import PoliceState
from receiver.report import StationReport, build_station_report

from .police_helpers import (
    OFFICER,
    SITES,
    ReceiverThread,
    escalation,
    post,
    ref_number,
    write_config,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOVEMBER = Month(2026, 11, "Asia/Ho_Chi_Minh")
SILENT_DAYS = (9, 10, 11)  # bv-b's gateway sends nothing: lost on the 11th, back on the 12th


def at(day: int, hh: int, mm: int = 0, month: int = 11) -> float:
    return datetime(2026, month, day, hh, mm, tzinfo=TZ).timestamp()


@dataclass
class Station:
    rx: ReceiverThread
    clock: ManualClock

    def to(self, when: float) -> None:
        assert when >= self.clock.wall()
        self.clock.advance(when - self.clock.wall())
        assert self.rx.rx is not None
        links = self.rx.rx.links
        self.rx.call(links.check)  # the supervision's once-a-second check, now

    def send(self, site: str, code: str, type_: str, drill: bool) -> str:
        req = escalation(site, code=code, type_=type_, drill=drill)
        resp = post(self.rx.base, req, SITES[site][1], ts=int(self.clock.wall()))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["ref"])

    def alarm(self, site: str, code: str, *, type_: str = "panic", drill: bool = False) -> int:
        return ref_number(self.send(site, code, type_, drill))

    def test_report(self, site: str) -> None:
        self.send(site, "0000", "test", False)

    def act(self, ref: int, state: PoliceState, note: str = "") -> None:
        assert self.rx.rx is not None
        desk = self.rx.rx.desk
        result = self.rx.call(lambda: desk.act(ref, state, OFFICER, note))
        assert result.error is None, result.error

    def steps(self, ref: int, t0: float, *steps: tuple[float, PoliceState]) -> None:
        for offset, state in steps:
            self.to(t0 + offset)
            self.act(ref, state, "Đã xử lý" if state == PoliceState.CLOSED else "")


@dataclass(frozen=True)
class Built:
    config: Path
    refs: dict[str, int]


@pytest.fixture(scope="module")
def november(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("station")
    config = write_config(tmp, supervision_s=2 * 86400)
    clock = ManualClock(wall_start=at(31, 20, month=10))
    thread = ReceiverThread(config, clock).start()
    s = Station(thread, clock)
    refs: dict[str, int] = {}
    try:
        s.to(at(31, 21, month=10))
        october = s.alarm("bv-a", "0101")
        s.steps(october, at(31, 21, month=10), (11 * 3600, PoliceState.TAKEN))  # 1 Nov 08:00
        for day in range(1, 31):
            s.to(at(day, 8))
            s.test_report("bv-a")
            if day not in SILENT_DAYS:
                s.test_report("bv-b")
            if day == 3:
                t0 = at(3, 10)
                s.to(t0)
                refs["A1"] = s.alarm("bv-a", "1111")
                s.steps(refs["A1"], t0, (30, PoliceState.TAKEN), (600, PoliceState.ON_SCENE),
                        (1800, PoliceState.CLOSED))
            if day == 12:
                t0 = at(12, 9)
                s.to(t0)
                refs["D1"] = s.alarm("bv-b", "2222", drill=True)
                s.steps(refs["D1"], t0, (45, PoliceState.TAKEN), (300, PoliceState.CLOSED))
            if day == 15:
                t0 = at(15, 22)
                s.to(t0)
                refs["A2"] = s.alarm("bv-a", "3333", type_="duress")
                s.steps(refs["A2"], t0, (90, PoliceState.TAKEN), (1200, PoliceState.CLOSED))
            if day == 20:
                s.to(at(20, 14))
                refs["A3"] = s.alarm("bv-b", "4444")  # nobody takes it
                resp = post(thread.base, escalation("bv-b", code="5555"), b"not-the-secret",
                            ts=int(clock.wall()))  # forged: refused, journaled
                assert resp.status_code >= 400
        t0 = at(30, 23, 50)
        s.to(t0)
        refs["A4"] = s.alarm("bv-a", "6666")
        s.steps(refs["A4"], t0, (60, PoliceState.TAKEN), (2400, PoliceState.CLOSED))
        s.to(at(1, 9, month=12))
        s.alarm("bv-a", "7777")  # December's
    finally:
        thread.stop()
    yield Built(config, refs)


@pytest.fixture(scope="module")
def report(november: Built) -> StationReport:
    config = load_config(november.config)
    return build_station_report(config, config.storage_dir / JOURNAL_FILE, NOVEMBER, at(2, 8, month=12))


def test_per_site_figures(report: StationReport, november: Built) -> None:
    sites = {s.site: s for s in report.sites}
    a, b = sites["bv-a"], sites["bv-b"]
    assert (a.alarms, a.drills, a.by_type) == (3, 0, {"panic": 2, "duress": 1})
    taken, scene, closed = a.steps
    assert (taken.count, taken.median_s, taken.worst_s) == (3, 60, 90)
    assert (scene.count, scene.median_s) == (1, 600)
    assert (closed.count, closed.median_s, closed.worst_s) == (3, 1800, 2400)  # A4 on 1 Dec
    assert (b.alarms, b.drills) == (1, 1)
    assert [x.ref for x in b.never_taken] == [november.refs["A3"]]
    assert a.never_taken == ()
    [lost] = b.link_losses
    assert (lost.start, lost.end, lost.ongoing) == (at(11, 8), at(12, 8), False)
    assert a.link_losses == () and (a.refused, b.refused) == (0, 1)
    assert (a.tests, b.tests) == (30, 30 - len(SILENT_DAYS))
    # October's alarm (taken on 1 November) and December's are not November's
    assert sorted(x.code for x in report.alarms) == ["1111", "2222", "3333", "4444", "6666"]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext missing")
def test_command_writes_html_and_pdf(november: Built, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "receiver.cli", "report", "-c",
                          str(november.config), "--month", "2026-11", "--out-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    html = (tmp_path / "ca-test-report-2026-11.html").read_text(encoding="utf-8")
    assert "Báo cáo tiếp nhận báo động tháng 11/2026" in html and "<script" not in html
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "ca-test-report-2026-11.pdf"),
                           "-"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "Công an phường Thử" in text and "Bệnh viện Nhi B" in text
    assert "Mất liên lạc với bệnh viện" in text and "1 ngày" in text
    assert "4444" in text  # the alarm nobody took, named


def test_bad_month_is_one_line(november: Built, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "receiver.cli", "report", "-c",
                          str(november.config), "--month", "11/2026", "-o",
                          str(tmp_path / "r.html")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "use YYYY-MM" in run.stderr
