"""The config is validated whole; every problem is one line naming its key path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config.schema import load_config
from gateway.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

BASE = """
[site]
id = "bv"
name = "Bệnh viện"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"

[[devices]]
id = "b1"
ward = "cap-cuu"
room = "P1"
pin = 17

[[devices]]
id = "b2"
ward = "cap-cuu"
room = "P2"
pin = 27
"""


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.lines()


BROKEN = [
    ("syntax", BASE + "\n[mqtt\nurl = 1", ": TOML syntax error"),
    ("unknown key", BASE + "\n[storage]\nfolder = 'x'\n", "storage.folder: unknown key"),
    ("wrong type", BASE.replace("pin = 17", 'pin = "17"'), "devices[0].pin: input should be a valid integer"),
    ("duplicate id", BASE.replace('id = "b2"', 'id = "b1"'), "devices[1].id: device id 'b1' is already used by devices[0]"),
    ("duplicate pin", BASE.replace("pin = 27", "pin = 17"), "devices[1].pin: pin 17 is already used by devices[0]"),
    ("unknown ward", BASE.replace('ward = "cap-cuu"\nroom = "P2"', 'ward = "icu"\nroom = "P2"'), "devices[1].ward: unknown ward 'icu'"),
    ("missing password file", BASE + "\n[mqtt]\nusername = 'gw'\npassword_file = 'nope.txt'\n", "mqtt.password_file: file"),
    ("bad url", BASE + "\n[mqtt]\nurl = 'http://broker'\n", "mqtt.url: scheme must be one of mqtt://, mqtts://"),
    ("pin out of range", BASE.replace("pin = 27", "pin = 99"), "devices[1].pin: input should be less than or equal to 53"),
    ("missing site name", BASE.replace('name = "Bệnh viện"\n', ""), "site.name: is required"),
    ("no wards", BASE.split("[[wards]]")[0], "wards: is required"),
    ("gpio device without pin", BASE.replace("pin = 27\n", ""), "devices[1].pin: is required for a GPIO device"),
    ("bad policy mode", BASE + "\n[policy]\ndefault = 'sometimes'\n", "policy.default: must be 'immediate'"),
    ("serial device without bus", BASE + "\n[[devices]]\nid='n1'\nward='cap-cuu'\nroom='P3'\ninput='serial'\nnode=5\n", "devices[2].input: a serial device needs a [serial] section"),
    ("bad keepalive", BASE + "\n[mqtt]\nkeepalive_s = 0\n", "mqtt.keepalive_s: input should be greater than or equal to 5"),
    ("bad device id", BASE.replace('id = "b1"', 'id = "b 1"'), "devices[0].id: string should match pattern"),
]


@pytest.mark.parametrize(("name", "text", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_key_path(tmp_path: Path, name: str, text: str, expected: str) -> None:
    lines = errors_of(tmp_path, text)
    assert any(expected in line for line in lines), lines


def test_every_error_reported_at_once(tmp_path: Path) -> None:
    text = BASE.replace("pin = 27", "pin = 17").replace('id = "b2"', 'id = "b1"') + "\n[mqtt]\nurl='ftp://x'\n"
    lines = errors_of(tmp_path, text)
    assert len(lines) >= 3


def test_world_readable_secret_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pw.txt"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o644)
    lines = errors_of(tmp_path, BASE + "\n[mqtt]\nusername='gw'\npassword_file='pw.txt'\n")
    assert any(line.startswith("mqtt.password_file:") and "readable by others" in line for line in lines)
    os.chmod(secret, 0o600)
    (tmp_path / "site.toml").write_text(BASE + "\n[mqtt]\nusername='gw'\npassword_file='pw.txt'\n")
    assert load_config(tmp_path / "site.toml").mqtt.password_file == "pw.txt"


def test_example_site_is_valid() -> None:
    config = load_config(ROOT / "examples" / "site.toml")
    assert {w.name for w in config.wards} == {"Khoa Cấp cứu", "Khoa Khám bệnh"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("check-config", "-c", str(ROOT / "examples" / "site.toml"))
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace("pin = 27", "pin = 17"), encoding="utf-8")
    result = run_cli("check-config", "-c", str(bad))
    assert result.returncode == 2
    assert "devices[1].pin: pin 17 is already used by devices[0]" in result.stdout.splitlines()
    missing = run_cli("run", "-c", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and "no such file" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
