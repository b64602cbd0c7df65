"""Secrets: owner-only files or the config is refused; a password never appears in the log,
on MQTT or in the journal; TLS to the broker is verified against the configured CA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from conftest import MOSQUITTO, ROOT, free_port
from mqtt_helpers import Broker, MqttCollector, wait_for_port
from waiting import poll_until

from gateway.config.schema import load_config
from gateway.core.errors import ConfigError

from .helpers import SITE, Watcher, as_this_user, site_file

PASSWORD = "Mk-7q!vX2-p4ssw0rd-zeta"


def _secret(path: Path, text: str, mode: int) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_world_readable_password_file_is_refused_by_check_config(tmp_path: Path) -> None:
    _secret(tmp_path / "mqtt.pw", PASSWORD, 0o644)
    config = site_file(tmp_path, 1883, mqtt='username = "gw"\npassword_file = "mqtt.pw"')
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", "-c", str(config)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stdout.splitlines() if line.startswith("mqtt.password_file:")]
    assert len(lines) == 1 and "readable by others" in lines[0] and "chmod 600" in lines[0]
    assert PASSWORD not in result.stdout + result.stderr


def test_every_secret_key_needs_an_owner_only_file(tmp_path: Path) -> None:
    for name in ("pw", "hotline", "node", "client.key"):
        _secret(tmp_path / name, "secret", 0o640)
    (tmp_path / "client.crt").write_text("cert")
    mqtt = ('username = "gw"\npassword_file = "pw"\nclient_cert = "client.crt"\n'
            'client_key = "client.key"')
    extra = ('[escalation.http]\nurl = "https://hotline.example/a"\nsecret_file = "hotline"\n'
             '[serial]\nport = "/dev/null"\n')
    devices = ('\n[[devices]]\nid = "n1"\nward = "cap-cuu"\nroom = "R"\ninput = "serial"\n'
               'node = 1\nkey_file = "node"\n')
    config = site_file(tmp_path, 1883, mqtt=mqtt, extra=extra)
    config.write_text(config.read_text().replace("[mqtt]", devices + "\n[mqtt]", 1))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    keys = {path for path, _ in err.value.errors}
    assert {"mqtt.password_file", "mqtt.client_key", "escalation.http.secret_file",
            "devices[2].key_file"} <= keys


def test_password_never_leaks(tmp_path: Path, gateway_process: type) -> None:
    passwd = tmp_path / "mosquitto.passwd"
    for i, (user, pw) in enumerate((("gateway", PASSWORD), ("watcher", "watch-pw"))):
        flags = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(passwd), user, pw], check=True, timeout=30)
    broker = Broker(MOSQUITTO, free_port(), tmp_path / "mosquitto",
                    extra=as_this_user() + f"allow_anonymous false\npassword_file {passwd}\n")
    broker.start()
    _secret(tmp_path / "mqtt.pw", PASSWORD, 0o600)
    config = site_file(tmp_path, broker.port, mqtt='username = "gateway"\npassword_file = "mqtt.pw"')
    watcher = Watcher(broker.port, username="watcher", password="watch-pw")
    gw = gateway_process(config, tmp_path / "gateway.log")
    try:
        watcher.start("#")
        gw.start()
        gw.wait_ready()
        gw.control({"cmd": "click", "device": "er-desk-1", "seconds": 0.1})
        watcher.wait_for(lambda ms: watcher.events("press") and watcher.on("/gateway/health"))
        assert gw.terminate() == 0
        watcher.wait_for(lambda ms: [m for m in ms if m.payload == b"offline"])
    finally:
        watcher.stop()
        gw.stop()
        broker.stop()
    secret = PASSWORD.encode()
    log = (tmp_path / "gateway.log").read_bytes()
    assert b"event=broker_connected" in log
    assert secret not in log
    assert all(secret not in m.payload and secret.decode() not in m.topic for m in watcher.messages)
    journal_files = list((tmp_path / "var").glob("journal.sqlite3*"))
    assert journal_files
    for path in journal_files:
        assert secret not in path.read_bytes(), path.name


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_broker(tmp_path: Path, ca: trustme.CA) -> tuple[Broker, int]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    tls_port = free_port()
    extra = (f"listener {tls_port} 127.0.0.1\ncertfile {tmp_path / 'server.pem'}\n"
             f"keyfile {tmp_path / 'server.key'}\n")
    broker = Broker(MOSQUITTO, free_port(), tmp_path / "mosquitto", extra=as_this_user() + extra)
    broker.start()
    wait_for_port(tls_port)
    return broker, tls_port


def test_tls_with_the_right_ca_connects(tmp_path: Path, ca: trustme.CA,
                                        gateway_process: type) -> None:
    broker, tls_port = _tls_broker(tmp_path, ca)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = site_file(tmp_path, broker.port, url=f"mqtts://127.0.0.1:{tls_port}",
                       mqtt='ca_file = "ca.pem"')
    collector = MqttCollector(broker.port)
    gw = gateway_process(config, tmp_path / "gateway.log")
    try:
        collector.start(f"alarmgw/{SITE}/gateway/status")
        gw.start()
        collector.wait_for(lambda ms: [m for m in ms if m.payload == b"online"], 20)
    finally:
        collector.stop()
        gw.stop()
        broker.stop()


def test_tls_with_a_wrong_ca_is_refused_with_one_clear_line(tmp_path: Path, ca: trustme.CA,
                                                            gateway_process: type) -> None:
    broker, tls_port = _tls_broker(tmp_path, ca)
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    config = site_file(tmp_path, broker.port, url=f"mqtts://127.0.0.1:{tls_port}",
                       mqtt='ca_file = "other-ca.pem"')
    collector = MqttCollector(broker.port)
    gw = gateway_process(config, tmp_path / "gateway.log")
    mosquitto_log = tmp_path / "mosquitto" / "mosquitto.log"
    try:
        collector.start(f"alarmgw/{SITE}/#")
        gw.start()
        gw.wait_ready()
        # the gateway retries (backoff from 0.2 s): wait for several refused handshakes
        poll_until(lambda: mosquitto_log.read_text().count(f"on port {tls_port}") >= 3, 20,
                   what="the gateway retrying")
        lines = [line for line in (tmp_path / "gateway.log").read_text().splitlines()
                 if "event=broker_unreachable" in line]
        assert gw.control({"cmd": "ping"})["ok"]
    finally:
        collector.stop()
        gw.stop()
        broker.stop()
    assert len(lines) == 1, lines
    assert "level=warning" in lines[0] and "certificate verify failed" in lines[0].lower()
    assert not [m for m in collector.messages if m.payload == b"online"]


# -- credentials in URLs: masked wherever a URL is shown --------------------------------

HOTLINE = f"https://gw:{PASSWORD}@hotline.example:8443/alarm?site=bv"


def test_a_url_password_is_masked_in_targets_health_errors_and_logs(tmp_path: Path) -> None:
    """The hotline URL is journaled as ``escalation_attempt.target``, published in
    ``gateway/health`` and logged: none of them may carry its password."""
    import logging

    from gateway.alarms.plan import targets
    from gateway.escalation.http import HttpChannel, _describe
    from gateway.ops.logs import KeyValueFormatter

    _secret(tmp_path / "hotline.key", "k", 0o600)
    extra = f'[escalation.http]\nurl = "{HOTLINE}"\nsecret_file = "hotline.key"\n'
    config = load_config(site_file(tmp_path, 1883, extra=extra))
    shown = [target for channel, target in targets(config, drill=False) if channel == "http"]
    assert shown == ["https://***@hotline.example:8443/alarm?site=bv"]
    assert config.escalation.http is not None
    channel = HttpChannel.from_config(config.escalation.http, "k")
    assert channel.url == HOTLINE  # still used, with its credentials, to connect
    assert channel.health()["url"] == "https://***@hotline.example:8443/alarm?site=bv"
    error = _describe("connection", ValueError(f"cannot reach {HOTLINE}"))
    assert PASSWORD not in error and "***@hotline.example" in error
    for args in ((HOTLINE,), (f"mqtt://{PASSWORD}@broker:1883",)):
        record = logging.LogRecord("t", logging.WARNING, __file__, 1, "event=x url=%s", args, None)
        line = KeyValueFormatter().format(record)
        assert PASSWORD not in line and "***@" in line, line
