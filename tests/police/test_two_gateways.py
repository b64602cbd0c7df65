"""One real receiver process, two real gateway processes (different sites and secrets), one
real mosquitto: alarms arrive once across retries and restarts of either side, the
officer's steps reach the right gateway only, a gateway killed mid-poll misses no ack and
applies none twice, a forged or wrong-site request is refused and journaled, and a silent
site goes "mất liên lạc" and comes back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import DEFAULT_DEVICES, ROOT, GatewayProcess

from police.police_helpers import (
    SITES,
    Officer,
    escalation,
    free_port,
    journal_rows,
    post,
    wait_until,
    write_config,
)


class ReceiverProcess:
    """``alarm-receiver run`` as a real child process."""

    def __init__(self, config: Path, log: Path, port: int) -> None:
        self.config, self.log, self.port = config, log, port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReceiverProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "receiver.cli", "run", "-c",
                                      str(self.config)], stdout=out, stderr=subprocess.STDOUT,
                                     cwd=ROOT)
        wait_until(self._answers, 20, 0.05)
        return self

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            return requests.get(self.base + "/api/session", timeout=2).status_code == 401
        except requests.ConnectionError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def site_config(folder: Path, site: str, mqtt_port: int, *receivers: str) -> Path:
    """A gateway of ``site`` with GPIO buttons that escalates at once to each receiver
    (base URLs; ids ``ca-1``, ``ca-2``, ...)."""
    folder.mkdir()
    name, secret = SITES[site]
    secret_file = folder / "receiver.secret"
    secret_file.write_bytes(secret + b"\n")
    os.chmod(secret_file, 0o600)
    text = f"""
[site]
id = "{site}"
name = "{name}"
address = "1 Phố Thử"
security_desk_phone = "+84240000000"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"

[[wards]]
id = "kham-benh"
name = "Khoa Khám bệnh"
{DEFAULT_DEVICES}
[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"

[storage]
path = "{folder / 'var'}"

[policy]
default = "immediate"

"""
    for i, base in enumerate(receivers, 1):
        text += (f'[[escalation.receivers]]\nid = "ca-{i}"\nurl = "{base}/v1/alarms"\n'
                 f'secret_file = "{secret_file}"\ntimeout_s = 2\nretry_base_s = 0.2\n'
                 'retry_cap_s = 0.5\nmax_attempts = 100\npoll_wait_s = 1\n')
    path = folder / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def gateway_alarms(folder: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{folder / 'var' / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT payload FROM retained WHERE topic LIKE 'alarm/%' "
                            "AND payload IS NOT NULL").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [json.loads(v) for (v,) in rows]


def gateway_events(folder: Path, type_: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{folder / 'var' / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT body FROM events WHERE type=? ORDER BY seq",
                            (type_,)).fetchall()
    finally:
        conn.close()
    return [json.loads(b).get("detail") or {} for (b,) in rows]


def receiver_alarms(tmp_path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{tmp_path / 'recv' / 'receiver.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT ref, site, alarm_id, state FROM alarms ORDER BY ref").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [{"ref": r, "site": s, "alarm_id": a, "state": st} for r, s, a, st in rows]


def police_steps(alarm: dict[str, Any]) -> list[tuple[str, str]]:
    return [(h["state"], h["by"]) for h in alarm.get("history", [])
            if str(h.get("by", "")).startswith("police:")]


def click(gw: GatewayProcess, device: str) -> None:
    assert gw.control({"cmd": "click", "device": device, "seconds": 0.03})["ok"]


@pytest.mark.timeout(180)
def test_two_gateways_one_receiver(tmp_path: Path, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    rx = ReceiverProcess(write_config(tmp_path, port, supervision_s=4, max_wait_s=1),
                         tmp_path / "receiver.log", port).start()
    try:
        _story(tmp_path, rx, broker, gateway_process)
    finally:
        rx.kill()


def _story(tmp_path: Path, rx: ReceiverProcess, broker, gateway_process) -> None:  # type: ignore[no-untyped-def]
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    gw_a = gateway_process(site_config(a_dir, "bv-a", broker.port, rx.base), tmp_path / "a.log")
    gw_b = gateway_process(site_config(b_dir, "bv-b", broker.port, rx.base), tmp_path / "b.log")
    for gw in (gw_a, gw_b):
        gw.start()
        gw.wait_ready()

    # 1. a press at each hospital: one alarm per site at the receiver, delivered at both ends
    click(gw_a, "er-desk-1")
    click(gw_b, "exam-3")
    rows = wait_until(lambda: len(receiver_alarms(tmp_path)) == 2 and receiver_alarms(tmp_path),
                      20)
    by_site = {r["site"]: r for r in rows}
    assert set(by_site) == {"bv-a", "bv-b"}
    for folder in (a_dir, b_dir):
        wait_until(lambda f=folder: [a for a in gateway_alarms(f) if a["state"] == "escalated"], 20)

    # 2. the officer takes bv-a's alarm: bv-a shows it by the officer's name, bv-b does not
    officer = Officer.login(rx.base)
    assert officer.act(by_site["bv-a"]["ref"], "take").status_code == 200
    took = wait_until(lambda: [a for a in gateway_alarms(a_dir)
                               if a["state"] == "police_acknowledged"], 10)
    assert police_steps(took[0]) == [("police_acknowledged", "police:Trung úy Nguyễn Văn Hùng")]
    assert took[0]["id"] == by_site["bv-a"]["alarm_id"]

    # 3. bv-a killed (its poll open); on scene meanwhile; restarted: applied once, not twice
    gw_a.kill()
    assert officer.act(by_site["bv-a"]["ref"], "on_scene").status_code == 200
    gw_a.start()
    gw_a.wait_ready()
    wait_until(lambda: any(s == "on_scene" for a in gateway_alarms(a_dir)
                           for s, _ in police_steps(a)), 15)
    gw_a.kill()  # once more, right after applying: the cursor came with the acks
    gw_a.start()
    gw_a.wait_ready()
    assert officer.act(by_site["bv-a"]["ref"], "close", "Đã xử lý xong").status_code == 200
    wait_until(lambda: any(s == "closed" for a in gateway_alarms(a_dir)
                           for s, _ in police_steps(a)), 15)
    steps = [s for a in gateway_alarms(a_dir) for s, _ in police_steps(a)]
    assert steps == ["police_acknowledged", "on_scene", "closed"]
    assert [e["state"] for e in gateway_events(a_dir, "police_ack")] == \
        ["police_acknowledged", "on_scene", "closed"]
    assert gateway_events(b_dir, "police_ack") == []
    assert all(a["state"] != "police_acknowledged" for a in gateway_alarms(b_dir))

    # 4. the receiver is down while bv-b presses again: retried, stored once when it is back
    rx.kill()
    click(gw_b, "er-desk-1")
    wait_until(lambda: [e for e in gateway_events(b_dir, "escalation_attempt")
                        if e["status"] == "retrying"], 15)
    rx.start()
    wait_until(lambda: len(receiver_alarms(tmp_path)) == 3, 20)
    wait_until(lambda: len([a for a in gateway_alarms(b_dir) if a["state"] == "escalated"]) == 2,
               20)
    ids = [r["alarm_id"] for r in receiver_alarms(tmp_path)]
    assert len(ids) == len(set(ids)) == 3

    # 5. bv-b's secret claiming bv-a, and a stale request: refused and journaled
    forged = post(rx.base, escalation("bv-a"), SITES["bv-b"][1])
    stale = post(rx.base, escalation("bv-b"), SITES["bv-b"][1], ts=int(time.time()) - 400)
    assert forged.status_code == stale.status_code == 401
    db = tmp_path / "recv" / "receiver.sqlite3"
    refused = wait_until(lambda: len(journal_rows(db, "refused")) >= 2
                         and journal_rows(db, "refused"), 5)
    assert {r["site"] for r in refused} >= {"bv-a", "bv-b"}
    assert len(receiver_alarms(tmp_path)) == 3

    # 6. bv-b goes silent: "mất liên lạc" at the receiver; back when it speaks again
    def lost(site: str) -> int:
        return len([r for r in journal_rows(db, "link_lost") if r["site"] == site])

    before = {site: lost(site) for site in SITES}  # bv-a may have been lost while restarting
    gw_b.kill()
    wait_until(lambda: lost("bv-b") == before["bv-b"] + 1, 15)
    assert lost("bv-a") == before["bv-a"]  # still polling: never lost meanwhile
    gw_b.start()
    gw_b.wait_ready()
    wait_until(lambda: [r for r in journal_rows(db, "link_restored") if r["site"] == "bv-b"], 15)
    for log in ("a.log", "b.log", "receiver.log"):
        assert "Traceback" not in (tmp_path / log).read_text(), log


def test_one_gateway_two_receivers_each_its_own_delivery(tmp_path: Path, broker, receiver,
                                                         gateway_process) -> None:  # type: ignore[no-untyped-def]
    """Ward and district police: the district's receiver is down; the ward's gets the
    alarm and takes it; the district's, once up, gets it too (still owed while open)."""
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    ward = receiver(write_config(tmp_path / "r1", max_wait_s=1))
    district_port = free_port()
    district_config = write_config(tmp_path / "r2", district_port, max_wait_s=1)
    gw = gateway_process(site_config(tmp_path / "a", "bv-a", broker.port, ward.base,
                                     f"http://127.0.0.1:{district_port}"), tmp_path / "a.log")
    gw.start()
    gw.wait_ready()
    click(gw, "er-desk-1")
    folder = tmp_path / "a"
    alarm = wait_until(lambda: [a for a in gateway_alarms(folder) if a["state"] == "escalated"],
                       20)[0]
    wait_until(lambda: [e for e in gateway_events(folder, "trouble")
                        if e["source"] == "receiver:ca-2"], 20)  # its ack poll fails too
    delivered = {e["target"]: e["status"] for e in alarm["escalations"]}
    assert delivered[f"{ward.base}/v1/alarms"] == "delivered"
    assert delivered[f"http://127.0.0.1:{district_port}/v1/alarms"] != "delivered"
    ref = wait_until(lambda: receiver_alarms(tmp_path / "r1"), 10)[0]["ref"]
    assert Officer.login(ward.base).act(ref, "take").status_code == 200
    wait_until(lambda: [a for a in gateway_alarms(folder) if a["state"] == "police_acknowledged"],
               10)
    district = receiver(district_config)
    wait_until(lambda: receiver_alarms(tmp_path / "r2"), 20)
    wait_until(lambda: [e for e in gateway_events(folder, "trouble_cleared")
                        if e["source"] == "receiver:ca-2"], 20)
    assert receiver_alarms(tmp_path / "r2")[0]["alarm_id"] == alarm["id"]
    assert district.base != ward.base
    assert {e["source"] for e in gateway_events(folder, "trouble")} <= {
        "receiver:ca-2", "hotline:ca-2"}  # the ward's receiver never was in trouble
