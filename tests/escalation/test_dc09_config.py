"""``check-config`` on ``[escalation.dc09]``: accounts, keys, code mappings, zones, names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from config.config_helpers import BASE, refusals

from gateway.config.schema import load_config, read_key

ARC = """
[escalation.dc09]
{channel}
[[escalation.dc09.receivers]]
name = "arc"
host = "127.0.0.1"
port = 12000
account = "{account}"
{receiver}
"""


def site(tmp_path: Path, *, account: str = "1A2B", receiver: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(BASE + ARC.format(account=account, receiver=receiver, channel=""),
                    encoding="utf-8")
    return path


def key_file(tmp_path: Path, key: bytes, mode: int = 0o600) -> str:
    path = tmp_path / "arc.key"
    path.write_bytes(key + b"\n")
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("size", [16, 24, 32])
def test_a_good_channel_loads_with_each_key_size(tmp_path: Path, size: int) -> None:
    key = b"K" * size
    config = load_config(site(tmp_path, receiver=f'key_file = "{key_file(tmp_path, key)}"\n'
                                                 'receiver = "1F"\nline = "2"'))
    dc09 = config.escalation.dc09
    assert dc09 is not None and dc09.receivers[0].receiver == "1F"
    assert read_key(config, dc09.receivers[0].key_file or "") == key


@pytest.mark.parametrize(("account", "expected"), [
    ("12", "escalation.dc09.receivers[0].account: string should match pattern"),
    ("12G4", "escalation.dc09.receivers[0].account: string should match pattern"),
    ("1" * 17, "escalation.dc09.receivers[0].account: string should match pattern"),
])
def test_bad_accounts_are_named(tmp_path: Path, account: str, expected: str) -> None:
    lines = refusals(site(tmp_path, account=account))
    assert any(expected in line.lower() for line in lines), lines


@pytest.mark.parametrize(("key", "mode", "expected"), [
    (b"short", 0o600, "must be 16, 24 or 32 characters"),
    (b"K" * 20, 0o600, "not 20"),
    (b"K" * 16, 0o644, "readable by others"),
    ("Khóa-bí-mật-1234".encode(), 0o600, "16, 24 or 32"),
    (b"K" * 15 + b"\x07", 0o600, "printable ASCII"),
])
def test_bad_keys_are_refused(tmp_path: Path, key: bytes, mode: int, expected: str) -> None:
    lines = refusals(site(tmp_path, receiver=f'key_file = "{key_file(tmp_path, key, mode)}"'))
    assert any(line.startswith("escalation.dc09.receivers[0].key_file:") and expected in line
               for line in lines), lines


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    lines = refusals(site(tmp_path, receiver='key_file = "nope.key"'))
    assert any(line.startswith("escalation.dc09.receivers[0].key_file:") for line in lines)


def test_code_mappings_take_only_dc03_codes_for_known_events(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BASE + """
[escalation.dc09.codes]
panic = "PZ"
duress = "ZZZ"
fire = "FA"
tamper = "TA"

[[escalation.dc09.receivers]]
name = "arc"
host = "127.0.0.1"
port = 12000
account = "1A2B"
""", encoding="utf-8")
    lines = refusals(path)
    assert any(line.startswith("escalation.dc09.codes.panic:") and "'PZ' is not a SIA DC-03"
               in line for line in lines), lines
    assert any(line.startswith("escalation.dc09.codes.duress:") for line in lines), lines
    assert any(line.startswith("escalation.dc09.codes.fire:") and "unknown event" in line
               for line in lines), lines
    assert not any("codes.tamper" in line for line in lines)


def test_duplicate_receiver_names_and_zones_are_named(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    second = ARC.split("{channel}")[1].format(account="1A2C", receiver="")
    path.write_text(BASE.replace("pin = 27", "pin = 27\nzone = 1")
                    + ARC.format(account="1A2B", receiver="", channel="") + second,
                    encoding="utf-8")
    lines = refusals(path)
    assert any(line.startswith("escalation.dc09.receivers[1].name:") and "already used" in line
               for line in lines), lines
    assert any(line.startswith("devices[1].zone:") and "DC-09 zone 1" in line
               for line in lines), lines


def test_no_receiver_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BASE + "\n[escalation.dc09]\nreceivers = []\n", encoding="utf-8")
    assert any(line.startswith("escalation.dc09.receivers:") for line in refusals(path))
