"""A gateway that cannot do its job says so and exits; it never runs on half its parts.

Each long-lived task of a real ``alarm-gateway run`` process is made to fail (the
simulation-only ``fail_task`` control command puts the fault in at the task's current
``await``): the process must exit 1 within seconds, with ``offline`` published and a
``trouble`` event naming the task, so systemd starts a fresh one. A task that ignores
cancellation must not keep the process alive past 5 s of SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, write_site

STOP_WITHIN_S = 5.0


def troubles(tmp_path: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(tmp_path / "var" / "journal.sqlite3")
    try:
        rows = conn.execute("SELECT body FROM events WHERE type='trouble' ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]).get("detail", {}) for r in rows]


def offline_seen(collector) -> bool:  # type: ignore[no-untyped-def]
    return bool([m for m in collector.messages
                 if m.topic.endswith("gateway/status") and m.payload == b"offline"])


def start(tmp_path: Path, broker, collector, gateway_process):  # type: ignore[no-untyped-def]
    gw = gateway_process(write_site(tmp_path, broker.port), tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    collector.wait_for(lambda ms: [m for m in ms if m.topic.endswith("gateway/status")
                                   and m.payload == b"online"])
    return gw


EVERY_TASK = ["alarm-timers", "escalation", "mqtt", "gpio", "health", "housekeeping",
              "journal-watch"]


def test_the_tasks_are_the_ones_this_test_fails(tmp_path: Path, broker, collector,
                                                 gateway_process) -> None:  # type: ignore[no-untyped-def]
    gw = start(tmp_path, broker, collector, gateway_process)
    answer = gw.control({"cmd": "tasks"})
    assert sorted(answer["tasks"]) == sorted(EVERY_TASK)  # a new task gets a case below
    assert gw.terminate(timeout=STOP_WITHIN_S) == 0


@pytest.mark.parametrize(("task", "fault"), [(t, "raise") for t in EVERY_TASK]
                         + [("gpio", "return")])
def test_a_failed_task_stops_the_whole_gateway(task: str, fault: str, tmp_path: Path, broker,
                                               collector, gateway_process) -> None:  # type: ignore[no-untyped-def]
    gw = start(tmp_path, broker, collector, gateway_process)
    assert gw.control({"cmd": "fail_task", "task": task, "fault": fault})["ok"]
    assert gw.proc.wait(STOP_WITHIN_S) == 1
    collector.wait_for(lambda ms: offline_seen(collector), 5)
    reasons = [t for t in troubles(tmp_path) if t.get("task") == task]
    assert reasons and task in str(reasons[0]["reason"])
    log = (tmp_path / "gw.log").read_text()
    assert f"event=task_failed task={task}" in log
    assert f"alarm-gateway: stopped: task '{task}'" in log  # the one line on stderr


@pytest.mark.parametrize(("task", "fault"), [("mqtt", "hang"), ("health", "block")])
def test_sigterm_ends_the_process_within_5_s_whatever_a_task_does(
        task: str, fault: str, tmp_path: Path, broker, collector, gateway_process) -> None:  # type: ignore[no-untyped-def]
    """``hang``: the task swallows every cancellation; ``block``: it holds the event loop
    itself, so only the hard deadline (a thread of its own) can end the process."""
    gw = start(tmp_path, broker, collector, gateway_process)
    assert gw.control({"cmd": "fail_task", "task": task, "fault": fault})["ok"]
    if fault == "hang":
        assert task in gw.control({"cmd": "tasks"})["running"]  # alive, though stuck
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(STOP_WITHIN_S) in (0, 1)


def test_check_config_and_run_refuse_a_node_key_they_cannot_load(tmp_path: Path) -> None:
    devices = """
[[devices]]
id = "bed-12"
ward = "cap-cuu"
room = "Giường 12"
input = "serial"
node = 12
key_file = "node12.key"
"""
    config = write_site(tmp_path, 1883, devices=devices,
                        extra='[serial]\nport = "/dev/ttyNOPE"\n')
    key = tmp_path / "node12.key"
    for text, why in [("zz-not-hex\n", "hex digits"), ("", "empty"), ("\n  \n", "empty"),
                      ("00112233445566778899aabbccddee\n", "at least 16")]:
        key.write_text(text)
        os.chmod(key, 0o600)
        for verb in ("check-config", "run"):
            done = subprocess.run([sys.executable, "-m", "gateway.cli", verb, "-c", str(config)],
                                  capture_output=True, text=True, timeout=30, cwd=ROOT)
            out = (done.stdout + done.stderr).strip()
            assert done.returncode == 2, (verb, text, out)
            assert "devices[0].key_file" in out and why in out, out
            assert "Traceback" not in out
            if verb == "run":
                assert len(done.stderr.strip().splitlines()) == 1
    key.write_text("00112233445566778899aabbccddeeff\n")
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", "-c", str(config)],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
