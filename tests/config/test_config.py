"""The config is validated whole; every problem is one line naming its key path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from config.config_helpers import BASE, errors_of

from gateway.config.schema import load_config

ROOT = Path(__file__).resolve().parents[2]

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
    assert ("devices[1].pin: pin 17 is already used by devices[0] (device 'b2')"
            in result.stdout.splitlines())
    missing = run_cli("run", "-c", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and "no such file" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


# -- secrets, time zones, typos, device names (issue: config and secret gaps) -----------

HTTP = '\n[escalation.http]\nurl = "https://hotline.example/alarm"\nsecret_file = "hotline.key"\n'


def _file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("text", ["", "\n", "   \n", "\nsecret-on-the-second-line\n"],
                         ids=["empty", "newline", "blank", "blank-first-line"])
def test_a_hotline_secret_that_would_be_an_empty_key_is_refused(tmp_path: Path, text: str) -> None:
    _file(tmp_path / "hotline.key", text)
    lines = errors_of(tmp_path, BASE + HTTP)
    assert [line for line in lines if line.startswith("escalation.http.secret_file:")
            and "first line" in line], lines


def test_a_hotline_secret_on_its_first_line_is_accepted(tmp_path: Path) -> None:
    _file(tmp_path / "hotline.key", "k3y-of-the-hotline\nnotes\n")
    (tmp_path / "site.toml").write_text(BASE + HTTP, encoding="utf-8")
    assert load_config(tmp_path / "site.toml").escalation.http is not None


def test_an_empty_mqtt_password_file_is_refused(tmp_path: Path) -> None:
    _file(tmp_path / "pw", "\n")
    lines = errors_of(tmp_path, BASE + "\n[mqtt]\nusername = 'gw'\npassword_file = 'pw'\n")
    assert any(line.startswith("mqtt.password_file:") and "empty" in line for line in lines)


CONSOLE = ('\n[console]\nlisten = "0.0.0.0:8443"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n'
           '[[console.users]]\nname = "desk"\npassword_hash = "$argon2id$v=19$m=65536,t=3,p=4$x$y"\n')


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604])
def test_a_console_tls_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    _file(tmp_path / "c.pem", "cert", 0o644)
    _file(tmp_path / "k.pem", "key", mode)
    lines = errors_of(tmp_path, BASE + CONSOLE)
    assert [line for line in lines if line.startswith("console.tls_key:")
            and "readable by others" in line], lines
    os.chmod(tmp_path / "k.pem", 0o600)
    assert load_config(tmp_path / "site.toml").console is not None


@pytest.mark.parametrize("zone", ["Asia/Hanoi", "asia/ho_chi_minh", "UTC+7", "",
                                  "../../etc/passwd", "/usr/share/zoneinfo/UTC", " Asia/Saigon"])
def test_a_time_zone_must_be_an_iana_name(tmp_path: Path, zone: str) -> None:
    text = BASE.replace('name = "Bệnh viện"', f'name = "Bệnh viện"\ntimezone = "{zone}"')
    lines = errors_of(tmp_path, text)
    assert any(line.startswith("site.timezone:") and "IANA" in line for line in lines), lines


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Asia/Bangkok", "UTC", "Etc/GMT-7"])
def test_iana_time_zones_are_accepted(tmp_path: Path, zone: str) -> None:
    text = BASE.replace('name = "Bệnh viện"', f'name = "Bệnh viện"\ntimezone = "{zone}"')
    (tmp_path / "site.toml").write_text(text, encoding="utf-8")
    assert load_config(tmp_path / "site.toml").site.timezone == zone


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + "\n[policy]\nafter = 30\n", "policy.after: unknown key (did you mean 'after_s'?)"),
    (BASE.replace("pin = 27", "pin = 27\nled_pn = 5"),
     "devices[1].led_pn: unknown key (did you mean 'led_pin'?)"),
    (BASE + "\n[[policy.rules]]\nwrd = 'cap-cuu'\nmode = 'never'\n",
     "policy.rules[0].wrd: unknown key (did you mean 'ward'?)"),
    (BASE + "\n[polcy]\n", "polcy: unknown key (did you mean 'policy'?)"),
], ids=["section key", "device key", "rule key", "section"])
def test_an_unknown_key_close_to_a_known_one_gets_a_suggestion(
    tmp_path: Path, text: str, expected: str
) -> None:
    lines = errors_of(tmp_path, text)
    assert any(line.startswith(expected) for line in lines), lines


def test_an_unknown_key_far_from_any_gets_no_suggestion(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, BASE + "\n[storage]\nxyzzy = 1\n")
    assert "storage.xyzzy: unknown key" in lines


def test_device_problems_name_the_device_id_as_well_as_the_index(tmp_path: Path) -> None:
    text = BASE.replace("pin = 27", "pin = 99").replace('room = "P1"', 'room = ""')
    lines = errors_of(tmp_path, text)
    assert any(line.startswith("devices[1].pin:") and line.endswith("(device 'b2')")
               for line in lines), lines
    assert any(line.startswith("devices[0].room:") and line.endswith("(device 'b1')")
               for line in lines), lines


def test_every_relative_path_is_read_from_the_config_folder_whatever_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``check-config`` and ``run`` read one file: the hotline's relative ``ca_file`` was
    checked against the config's folder but loaded from the working directory."""
    from types import SimpleNamespace

    from gateway.core.clock import SystemClock
    from gateway.features.alarms import _http_channel

    site = tmp_path / "etc"
    site.mkdir()
    _file(site / "hotline.key", "k\n")
    _file(site / "ca.pem", "ca", 0o644)
    (site / "site.toml").write_text(BASE + HTTP + 'ca_file = "ca.pem"\n', encoding="utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(site / "site.toml")
    channel = _http_channel(SimpleNamespace(config=config, clock=SystemClock()))
    assert channel.ca_file == str(site / "ca.pem")


SMS = BASE + "\n[modem]\nport = '/dev/ttyUSB2'\n[escalation.sms]\nnumbers = ['0901111111']\n"


@pytest.mark.parametrize(("text", "expected"), [
    (SMS + "next_tiers = [['0902222222']]\n[escalation.reminders]\nafter_s = 0\n",
     "escalation.sms.next_tiers: further tiers are reached by reminders, and"),
    (SMS + "min_interval_s = 300\n[escalation.reminders]\nafter_s = 120\n",
     "escalation.reminders.after_s: a reminder every 120 s, but [escalation.sms] "
     "min_interval_s allows one SMS per number every 300 s"),
    (SMS + "next_tiers = [['0902222222'], ['0903333333']]\n"
           "[escalation.reminders]\nrounds_per_tier = 3\nmax_rounds = 6\n",
     "escalation.sms.next_tiers[1]: reached at round 7, after the last one (max_rounds = 6)"),
], ids=["tiers-without-reminders", "rate-limited", "tier-never-reached"])
def test_a_reminder_ladder_that_could_not_run_as_written_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    """A ladder the site would trust and never get (held back by the SMS rate limit, a
    tier past the last round, tiers with reminders off) is refused with the reason."""
    lines = errors_of(tmp_path, text)
    assert any(line.startswith(expected) for line in lines), lines


def test_the_default_ladder_reminds_every_two_minutes(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SMS + "next_tiers = [['0902222222']]\n", encoding="utf-8")
    reminders = load_config(path).escalation.reminders
    assert (reminders.after_s, reminders.rounds_per_tier, reminders.max_rounds) == (120, 2, 10)
