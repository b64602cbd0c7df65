"""DC-09 at the police receiver (SPEC §7): a real receiver with ``[dc09]``, panels played by
the gateway's own DC-09 link over 127.0.0.1, what the duty officer and the journal see."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gateway.core.errors import ConfigError
from gateway.escalation.dc09.codec import Identity, SiaEvent
from gateway.escalation.dc09.link import Dc09Link, Outcome
from gateway.escalation.wire import RetryPolicy
from police.police_helpers import ReceiverThread, free_port, journal_rows, write_config
from receiver.config import load_config

KEY = b"C0FFEE0123456789"


def dc09_config(tmp_path: Path, port: int, key_mode: int = 0o600, key: bytes = KEY) -> Path:
    config = write_config(tmp_path)
    key_file = tmp_path / "bv-b.dc09"
    key_file.write_bytes(key + b"\n")
    os.chmod(key_file, key_mode)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'\n[dc09]\nlisten = "127.0.0.1:{port}"\n'
                f'[[dc09.accounts]]\naccount = "1A2B"\nsite = "bv-a"\n'
                f'[[dc09.accounts]]\naccount = "c0ffee"\nsite = "bv-b"\nkey_file = "{key_file}"\n')
    return config


def send(port: int, identity: Identity, seq: int, event: SiaEvent | None) -> Outcome:
    link = Dc09Link("police", "127.0.0.1", port, identity, timeout_s=2.0,
                    policy=RetryPolicy(max_attempts=1))
    return asyncio.run(link.deliver(seq, event)).outcome


def test_panel_alarms_reach_the_wall_screen_under_their_site(tmp_path: Path) -> None:
    port = free_port()
    rx = ReceiverThread(dc09_config(tmp_path, port)).start()
    try:
        secret = Identity(account="C0FFEE", line="1", key=KEY)
        assert send(port, secret, 7, SiaEvent(code="HA", zone=12, area=2,
                                               text="Khoa Nhi, phong 3")) == Outcome.DELIVERED
        assert send(port, secret, 7, SiaEvent(code="HA", zone=12, area=2,
                                               text="Khoa Nhi, phong 3")) == Outcome.DELIVERED
        assert send(port, Identity(account="1A2B"), 8, None) == Outcome.DELIVERED
        assert send(port, Identity(account="1A2B"), 9, SiaEvent(code="TR", zone=4)) \
            == Outcome.DELIVERED
        wrong = Identity(account="C0FFEE", key=b"F" * 16)
        assert send(port, wrong, 10, SiaEvent(code="PA", zone=1)) == Outcome.GAVE_UP
        assert rx.rx is not None
        records = rx.rx.desk.records()
        health = rx.rx.health()["dc09"]
    finally:
        rx.stop()
    assert len(records) == 1  # the resend of seq 7 is the same alarm
    alarm = records[0].alarm
    assert (alarm.site, alarm.type, alarm.source, alarm.code) == ("bv-b", "duress", "dc09", "0007")
    assert (alarm.ward_name, alarm.room) == ("Khoa Nhi, phong 3", "zone 12")
    db = tmp_path / "recv" / "receiver.sqlite3"
    assert len(journal_rows(db, "alarm_received")) == 1
    assert [(e["code"], e["zone"]) for e in journal_rows(db, "dc09_event")] == [("TR", 4)]
    refused = journal_rows(db, "refused")
    # the panel resends after each NAK (up to twice): every try is refused, none stored
    assert [(r["site"], r["path"], r["status"]) for r in refused] == [("bv-b", "dc09", 401)] * 3
    assert "key" in refused[0]["reason"]
    assert health["refused"] == 3 and health["answered_ACK"] == 4


@pytest.mark.parametrize(("change", "where", "reason"), [
    ({"key": b"short"}, "dc09.accounts[1].key_file", "16, 24 or 32"),
    ({"key_mode": 0o644}, "dc09.accounts[1].key_file", "readable by others"),
])
def test_check_config_refuses_bad_keys(tmp_path: Path, change: dict[str, object], where: str,
                                       reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(dc09_config(tmp_path, free_port(), **change))  # type: ignore[arg-type]
    assert any(p == where and reason in r for p, r in err.value.errors)


@pytest.mark.parametrize(("old", "new", "where"), [
    ('account = "1A2B"', 'account = "XYZ"', "dc09.accounts[0].account"),
    ('site = "bv-a"', 'site = "bv-z"', "dc09.accounts[0].site"),
    ('account = "c0ffee"', 'account = "1a2b"', "dc09.accounts[1].account"),
])
def test_check_config_refuses_bad_accounts_and_sites(tmp_path: Path, old: str, new: str,
                                                     where: str) -> None:
    config = dc09_config(tmp_path, free_port())
    text = config.read_text(encoding="utf-8")
    head, dc09 = text.split("[dc09]")
    config.write_text(head + "[dc09]" + dc09.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert where in {p for p, _ in err.value.errors}
