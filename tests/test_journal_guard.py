"""The journal and its storage folder: never silently lost, replaced, damaged or shared.

A deleted journal must not restart ``seq`` at 1 and forget open alarms; a damaged one must
not keep ACKing presses; two gateways must never write one folder. Each is refused with one
line (exit 2) at start, or raises ``trouble`` and exits 1 while running.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, write_site

from gateway.core.errors import StartRefused
from gateway.journal import guard, integrity
from gateway.journal.lock import StorageLock


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def fill(journal: Path, events: int) -> None:
    """Add ``events`` copies of the journal's last event (new ids and seqs), already delivered
    to every consumer, checkpointed into the main file (so damage to the middle of the file
    hits event pages)."""
    conn = sqlite3.connect(journal, isolation_level=None)
    try:
        conn.execute("BEGIN")
        top, body = conn.execute("SELECT seq, body FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        model = json.loads(body)
        for seq in range(top + 1, top + events + 1):
            event = {**model, "id": f"filler-{seq}", "seq": seq}
            conn.execute("INSERT INTO events(seq, id, ts, type, device, alarm_id, body) "
                         "VALUES (?,?,?,?,?,?,?)",
                         (seq, event["id"], time.time(), event["type"], None, None, json.dumps(event)))
        for consumer in ("mqtt", "escalation"):
            conn.execute("INSERT OR REPLACE INTO cursors(name, position) VALUES (?,?)",
                         (consumer, top + events))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def seed(journal: Path) -> None:
    conn = sqlite3.connect(journal, isolation_level=None)
    body = {"id": "seed", "seq": 1, "ts": "2026-01-01T00:00:00Z", "type": "gateway_start",
            "site": "bv-test", "detail": {}}
    conn.execute("INSERT INTO events(seq, id, ts, type, device, alarm_id, body) "
                 "VALUES (1, 'seed', 1.7e9, 'gateway_start', NULL, NULL, ?)", (json.dumps(body),))
    conn.close()


def damage(journal: Path) -> None:
    """Random bytes over a page in the middle of the file (not the header)."""
    size = journal.stat().st_size
    page = 4096
    middle = (size // page // 2) * page
    with open(journal, "r+b") as f:
        f.seek(middle)
        f.write(os.urandom(page))
        f.flush()
        os.fsync(f.fileno())


# -- the guard, on files ------------------------------------------------------------------------
def test_first_start_creates_an_identity_then_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = guard.prepare(path, new_journal=False)
    assert first.started_new == "first start"
    assert (tmp_path / guard.IDENTITY_FILE).read_text().strip() == first.identity
    again = guard.prepare(path, new_journal=False)
    assert again.identity == first.identity and again.started_new == ""
    kept = guard.prepare(path, new_journal=True)  # a flag left in a unit file changes nothing
    assert kept.identity == first.identity and kept.started_new == "" and path.exists()


def test_a_missing_journal_where_the_site_ran_is_refused_then_replaced_on_request(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = guard.prepare(path, new_journal=False)
    path.unlink()
    with pytest.raises(StartRefused) as refused:
        guard.prepare(path, new_journal=False)
    line = str(refused.value)
    assert "missing" in line and first.identity in line and "--new-journal" in line
    assert "\n" not in line
    new = guard.prepare(path, new_journal=True)
    assert new.started_new == "missing" and new.replaced == first.identity
    assert new.identity != first.identity
    assert guard.prepare(path, new_journal=False).identity == new.identity


def test_a_damaged_journal_is_refused_and_moved_aside_only_on_request(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    guard.prepare(path, new_journal=False)
    seed(path)
    fill(path, 3000)
    assert integrity.check(path) == []
    damage(path)
    assert integrity.check(path)
    with pytest.raises(StartRefused) as refused:
        guard.prepare(path, new_journal=False)
    assert "damaged" in str(refused.value) and "--new-journal" in str(refused.value)
    assert path.exists()  # nothing is touched without the flag
    new = guard.prepare(path, new_journal=True)
    assert new.started_new == "damaged" and Path(new.moved_to).exists()
    assert integrity.check(path) == []


def test_a_journal_of_another_storage_is_refused(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "a" / "journal.sqlite3", tmp_path / "b" / "journal.sqlite3"
    guard.prepare(ours, new_journal=False)
    guard.prepare(theirs, new_journal=False)
    ours.unlink()
    theirs.rename(ours)
    with pytest.raises(StartRefused, match="--new-journal"):
        guard.prepare(ours, new_journal=False)


def test_a_journal_from_before_identities_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(guard.SCHEMA)
    conn.close()
    adopted = guard.prepare(path, new_journal=False)
    assert adopted.started_new == "" and (tmp_path / guard.IDENTITY_FILE).exists()


def test_corruption_errors_are_told_apart() -> None:
    assert integrity.is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    assert integrity.is_corruption(sqlite3.DatabaseError("file is not a database"))
    assert not integrity.is_corruption(sqlite3.OperationalError("database or disk is full"))


def test_the_storage_lock_names_its_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from pathlib import Path; from gateway.journal.lock import StorageLock;"
         f"StorageLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StartRefused, match=f"PID {holder.pid}"):
            StorageLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait(10)
    mine = StorageLock(tmp_path)  # the kernel released it with the process: no stale lock
    mine.acquire()
    mine.release()


# -- the gateway, as a process ------------------------------------------------------------------
def test_run_refuses_a_deleted_journal_until_told_to_start_a_new_one(
        tmp_path: Path, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    gw = gateway_process(config, tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    assert gw.terminate(timeout=10) == 0
    journal = tmp_path / "var" / "journal.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)
    refused = run_cli("run", "-c", str(config), "--simulate")
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "missing" in refused.stderr and "--new-journal" in refused.stderr
    assert not journal.exists()
    again = gateway_process(config, tmp_path / "gw2.log", "--new-journal")
    again.start()
    again.wait_ready()
    assert again.terminate(timeout=10) == 0
    conn = sqlite3.connect(journal)
    try:
        reasons = [r[0] for r in conn.execute(
            "SELECT body FROM events WHERE type='trouble'")]
    finally:
        conn.close()
    assert any("new journal started" in r and "missing" in r for r in reasons)


def test_damage_found_while_running_is_trouble_and_exit_1_then_refused(
        tmp_path: Path, broker, collector, gateway_process) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    gw = gateway_process(config, tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    assert gw.terminate(timeout=10) == 0
    journal = tmp_path / "var" / "journal.sqlite3"
    fill(journal, 3000)
    gw = gateway_process(config, tmp_path / "gw2.log")
    gw.start()
    gw.wait_ready()
    assert gw.control({"cmd": "check_journal"})["whole"] is True
    damage(journal)
    answer = gw.control({"cmd": "check_journal"})
    assert answer["whole"] is False and answer["problems"]
    assert gw.proc.wait(5) == 1
    collector.wait_for(lambda ms: [m for m in ms if m.topic.endswith("gateway/status")
                                   and m.payload == b"offline"], 5)
    log = (tmp_path / "gw2.log").read_text()
    assert "event=task_failed task=journal-watch" in log and "damaged" in log
    refused = run_cli("run", "-c", str(config), "--simulate")
    assert refused.returncode == 2 and "damaged" in refused.stderr
    assert "--new-journal" in refused.stderr


def test_a_second_gateway_on_one_storage_exits_2_naming_the_first(
        tmp_path: Path, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    first = gateway_process(config, tmp_path / "gw.log")
    first.start()
    first.wait_ready()
    second = run_cli("run", "-c", str(config), "--simulate")
    assert second.returncode == 2
    assert f"PID {first.proc.pid}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert first.control({"cmd": "ping"})["ok"]  # the first one still owns its socket
    assert first.proc.poll() is None
    assert first.terminate(timeout=10) == 0


def test_every_file_the_gateway_creates_is_owner_only(
        tmp_path: Path, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    old = os.umask(0o022)  # what a shell outside systemd usually has
    try:
        gw = gateway_process(config, tmp_path / "gw.log")
        gw.start()
        gw.wait_ready()
    finally:
        os.umask(old)
    assert gw.control({"cmd": "click", "device": "er-desk-1", "seconds": 0.03})["ok"]
    storage = tmp_path / "var"
    found = {p.name: stat.S_IMODE(p.stat().st_mode) for p in storage.iterdir()}
    assert {"journal.sqlite3", "journal.sqlite3-wal", "journal.id", "gateway.lock",
            "control.sock"} <= set(found)
    assert {name: mode for name, mode in found.items() if mode & 0o077} == {}
    assert gw.terminate(timeout=10) == 0


def test_events_into_a_closed_pipe_ends_quietly(tmp_path: Path, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    config = write_site(tmp_path, broker.port)
    gw = gateway_process(config, tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    assert gw.terminate(timeout=10) == 0
    fill(tmp_path / "var" / "journal.sqlite3", 3000)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "events", "-c", str(config),
                             "--limit", "3000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(30)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code in (0, -signal.SIGPIPE)
