"""The monthly report over a year-long journal: time and peak memory of
``alarm-gateway report`` (HTML and PDF) for one month of a journal of >= 1 million events.

The year is made by the gateway's own parts, as the report tests make their month
(``tests/report/month_rig.py``): the scripted November (alarms, escalations to the simulated
hotline and modem, police replies, faults, drills) runs through the alarm engine and the
dispatcher; around it, a busy hospital's chatter of the whole of 2026 goes through the same
recorder and processors in batches: doors that only report (a pharmacy store room, staff
doors: opened and closed all day), a noisy serial bus's rejected frames, node boots.
Nothing is written into the journal by hand.

    python -m bench.report_year [--events 1000000] [--keep DIR]

Prints the journal's size, how long building it took, then the report's wall time and the
peak resident memory of the report process (``ru_maxrss`` of the child), HTML and PDF.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]

#: doors that only report (alarm_on_open = false): their openings are journaled, never alarms
QUIET_DOORS = """
[[devices]]
id = "{id}"
ward = "{ward}"
room = "{room}"
kind = "door_contact"
alarm_on_open = false
pin = {pin}
"""
DOORS = (("cc-staff", "cap-cuu", "Cửa nhân viên", 5), ("kb-store", "kham-benh", "Kho vật tư", 6),
         ("noi-staff", "noi", "Cửa nhân viên", 12), ("noi-store", "noi", "Kho thuốc", 13))
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def at(day: int, hh: int, mm: int = 0, ss: int = 0, month: int = 11) -> float:
    """Unix seconds of a local time in 2026 (as the month rig's ``at``)."""
    return datetime(2026, month, day, hh, mm, ss, tzinfo=TZ).timestamp()


YEAR_START, YEAR_END = at(1, 0, month=1), at(31, 23, 59, month=12)
BATCH = 5000


def chatter(start: float, end: float, per_day: int, rng: random.Random) -> list[Any]:
    """``per_day`` events a day between ``start`` and ``end``: door openings (with their
    closings a few seconds later), rejected frames, the odd node boot."""
    from gateway.core.events import EventDraft, EventType
    from gateway.serialbus.logic import rejected_frame_draft

    drafts: list[EventDraft] = []
    day = 86400.0
    t = start
    while t < end:
        for _ in range(per_day // 2):
            ts = t + rng.random() * day
            if ts >= end:
                continue
            roll = rng.random()
            if roll < 0.90:
                door = DOORS[rng.randrange(len(DOORS))][0]
                drafts.append(EventDraft(EventType.OPEN, door, ts=ts))
                drafts.append(EventDraft(EventType.CLOSE, door, ts=ts + 3 + rng.random() * 20))
            elif roll < 0.99:
                for k in range(2):
                    drafts.append(rejected_frame_draft("crc", b"#7 PRESS 12 zz\r\n", device=None,
                                                       node=7, suppressed=0, now=ts + k))
            else:
                drafts.append(EventDraft(EventType.BOOT, "kb-2", ts=ts,
                                         detail={"node": 7, "fw": "1.4.2"}))
                drafts.append(EventDraft(EventType.BOOT, "cc-3", ts=ts + 1,
                                         detail={"node": 3, "fw": "1.4.2"}))
        t += day
    drafts.sort(key=lambda d: d.ts or 0.0)
    return drafts


async def record(rig: Any, drafts: list[Any]) -> None:
    for i in range(0, len(drafts), BATCH):
        await rig.recorder.record_many(drafts[i:i + BATCH])


def build(folder: Path, events: int) -> tuple[Path, Path, float]:
    """The year's journal; returns (site file, journal, seconds it took). Run in a process
    of its own (``--build``): the measuring process stays small, so the report processes it
    starts inherit no large memory that their peak RSS would count."""
    sys.path.insert(0, str(ROOT / "tests"))  # the month rig of tests/report
    from report.month_rig import SECRET, MonthRig, site_config
    from report.november import november

    from gateway.config.schema import load_config
    from gateway.core.clock import ManualClock
    from simulator.hotline import HotlineServer
    from simulator.modem import ModemSimulator

    clock = ManualClock(wall_start=YEAR_START)
    hotline = HotlineServer(SECRET, now=clock.wall).start()
    modem = ModemSimulator()
    modem.start()
    started = time.monotonic()
    try:
        path = site_config(folder, hotline.url, modem.port)
        with path.open("a", encoding="utf-8") as f:
            for device, ward, room, pin in DOORS:
                f.write(QUIET_DOORS.format(id=device, ward=ward, room=room, pin=pin))
        config = load_config(path)
        rig = MonthRig(config, hotline, modem, clock)
        per_day = max(2, round(events / 365))
        rng = random.Random(2026)

        async def year() -> None:
            await rig.start()
            try:
                await record(rig, chatter(YEAR_START, at(31, 22, month=10), per_day, rng))
                rig.to(at(31, 22, 30, month=10))
                await november(rig)  # 31 Oct 23:30 to 1 Dec 06:00, through the gateway
                await record(rig, chatter(at(1, 0), at(1, 0, month=12), per_day, rng))
                await record(rig, chatter(at(1, 6, 1, month=12), YEAR_END, per_day, rng))
            finally:
                await rig.stop()

        asyncio.run(year())
        return path, rig.journal_path, time.monotonic() - started
    finally:
        modem.stop()
        hotline.stop()


def count(journal: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def report(site: Path, out: Path, *, pdf: bool) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``alarm-gateway report`` process."""
    args = [sys.executable, "-m", "gateway.cli", "report", "-c", str(site), "--month",
            "2026-11", "-o", str(out / "r.html")]
    if pdf:
        args += ["--pdf", str(out / "r.pdf")]
    started = time.monotonic()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors)
        # this child's own rusage (os.wait4): RUSAGE_CHILDREN would be the largest of any
        # child so far, the process that built the journal included
        _, status, usage = _wait4(child.pid, timeout_s=600)
        took = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"report failed: {errors.read().decode(errors='replace').strip()}")
    return took, usage.ru_maxrss / 1024  # KiB on Linux


def _wait4(pid: int, *, timeout_s: float) -> tuple[int, int, resource.struct_rusage]:
    """``os.wait4`` for ``pid``, killing it after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return done, status, usage
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.wait4(pid, 0)
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="about how many events the year holds (default 1000000)")
    parser.add_argument("--keep", type=Path, help="build in DIR and keep it (else a temp dir)")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # the builder process
    args = parser.parse_args()
    if args.build is not None:
        _, _, built_s = build(args.build, args.events)
        print(f"{built_s:.0f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        journal = folder / "var" / "journal.sqlite3"
        if journal.exists():
            built = "reused"
        else:
            run = subprocess.run([sys.executable, "-m", "bench.report_year", "--events",
                                  str(args.events), "--build", str(folder)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=3600)
            if run.returncode != 0:
                raise SystemExit(f"building the year failed: {run.stderr.strip()[-500:]}")
            built = f"built through the gateway in {run.stdout.split()[-1]} s"
        site = folder / "site.toml"
        from bench.common import machine

        print(f"machine: {machine()}")
        print(f"journal: {count(journal)} events, {journal.stat().st_size / 2**20:.0f} MiB, "
              f"{built}")
        html_s, html_mib = report(site, folder, pdf=False)
        print(f"report --month 2026-11, HTML only: {html_s:.1f} s, peak RSS {html_mib:.0f} MiB")
        both_s, both_mib = report(site, folder, pdf=True)
        print(f"report --month 2026-11, HTML + PDF: {both_s:.1f} s, peak RSS {both_mib:.0f} MiB")
        print("limits (issue 16): under 30 s and 200 MiB")


if __name__ == "__main__":
    main()
