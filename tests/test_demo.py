"""The demo runs with no hardware, broker or network and tells the story end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_and_shows_commit_before_publish() -> None:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--fast"],
                         capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    committed = next(i for i, line in enumerate(lines) if "committed" in line and "press er-desk-1" in line)
    published = next(i for i, line in enumerate(lines) if "published  events" in line and "press er-desk-1" in line)
    assert committed < published
    assert "Traceback" not in out.stdout + out.stderr
    text = out.stdout
    # the whole story: police over HTTP and SMS, their reply, security resolves
    assert "police hotline: HTTP POST received (signature ok=True" in text
    assert "police phone +84912000113 shows" in text and "Khoa Cấp cứu" in text
    assert "state=police_acknowledged" in text
    assert "resolve by Bảo vệ Trần Văn Bình: accepted" in text
    assert "state=resolved" in text


def test_receiver_demo_tells_both_ends() -> None:
    """``alarm-receiver demo``: a press rings the wall screen, the officer's steps reach the
    hospital, each in order."""
    out = subprocess.run([sys.executable, "-m", "receiver.cli", "demo", "--fast"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    steps = ["police wall screen RINGS: Bệnh viện Đa khoa Tỉnh Hòa Bình · Khoa Cấp cứu",
             'console shows: "Công an đã nhận — Trung úy Nguyễn Văn Hùng"',
             'console shows: "Công an đã đến"',
             "police_acknowledged (police:Trung úy Nguyễn Văn Hùng) → on_scene",
             "closed (police:Trung úy Nguyễn Văn Hùng)", "Demo finished"]
    at = [out.stdout.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), out.stdout
