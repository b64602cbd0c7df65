"""The systemd unit verifies and is hardened; sd_notify readiness, heartbeats from the loop
(stopping while the loop is blocked) and STOPPING, in process and as a real child process."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT
from mqtt_helpers import Broker

from gateway.ops.sdnotify import Notifier, watchdog_interval_s

from .helpers import NotifySocket, running_gateway, site_file

UNIT = ROOT / "systemd" / "alarm-gateway.service"
EXEC = "/opt/alarm-gateway/.venv/bin/alarm-gateway"
MAX_EXPOSURE = 1.5  # systemd 252 (bookworm); docs/operations.md records the same figure


def _unit_with_real_exec(tmp_path: Path) -> Path:
    """verify checks that ExecStart exists: point it at a stand-in executable."""
    exe = tmp_path / "bin" / "alarm-gateway"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    unit = tmp_path / "alarm-gateway.service"
    unit.write_text(UNIT.read_text().replace(EXEC, str(exe)))
    return unit


def test_unit_verifies(systemd_analyze: str, tmp_path: Path) -> None:
    unit = _unit_with_real_exec(tmp_path)
    result = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alarm-gateway.service" not in result.stderr, result.stderr  # no warnings either


def test_report_timer_and_service_verify(systemd_analyze: str, tmp_path: Path) -> None:
    """The monthly report's example (docs/report.md): a oneshot service and its timer."""
    exe = tmp_path / "bin" / "alarm-gateway"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    names = ("alarm-gateway-report.service", "alarm-gateway-report.timer")
    for name in names:
        text = (ROOT / "systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace(EXEC, str(exe)))
    result = subprocess.run([systemd_analyze, "verify", *(str(tmp_path / n) for n in names)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alarm-gateway-report" not in result.stderr, result.stderr
    timer = (ROOT / "systemd" / names[1]).read_text()
    assert "OnCalendar=*-*-01 06:00:00" in timer and "Persistent=true" in timer


def test_unit_security_exposure(systemd_analyze: str) -> None:
    result = subprocess.run([systemd_analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout + result.stderr)
    if found is None:
        pytest.skip(f"this systemd-analyze has no offline security mode: {result.stderr.strip()}")
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_has_the_promised_settings() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", f"ExecStart={EXEC} run -c /etc/alarm-gateway/site.toml",
                 "WatchdogSec=30", "Restart=always", "User=alarm-gateway",
                 "StateDirectory=alarm-gateway", "ConfigurationDirectory=alarm-gateway",
                 "SupplementaryGroups=gpio dialout", "DevicePolicy=closed", "CapabilityBoundingSet=",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "UMask=0077",
                 "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"):
        assert f"\n{line}\n" in text, line


def test_notifier_without_socket_does_nothing() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False


def test_notifier_soft_fails_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.WARNING, logger="gateway.ops.sdnotify"):
        assert notifier.notify("READY=1") is False
        assert notifier.notify("WATCHDOG=1") is False
    assert len([r for r in caplog.records if "sd_notify_failed" in r.getMessage()]) == 1
    notifier.close()


def test_watchdog_interval_from_env() -> None:
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "junk"}) is None


def test_abstract_socket_receives(monkeypatch: pytest.MonkeyPatch) -> None:
    sock = NotifySocket()
    try:
        assert Notifier(sock.name).notify("READY=1", "STATUS=x")
        assert sock.drain() == ["READY=1\nSTATUS=x"]
    finally:
        sock.close()


def test_gateway_heartbeats_stop_while_its_loop_is_blocked(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.name)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a heartbeat every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    config = site_file(tmp_path, broker.port)

    async def scenario() -> None:
        async with running_gateway(config):
            await sock.expect("READY=1")
            await sock.expect("WATCHDOG=1", count=3)
            sock.drain()
            time.sleep(0.6)  # noqa: ASYNC251 - blocks the loop on purpose: six heartbeat periods
            assert not any("WATCHDOG=1" in d for d in sock.drain())
            before = len(sock.seen)
            await sock.expect("WATCHDOG=1", count=sum("WATCHDOG=1" in d for d in sock.seen) + 1)
            assert len(sock.seen) > before
        await sock.expect("STOPPING=1")

    try:
        asyncio.run(scenario())
    finally:
        sock.close()
    assert any(d.startswith("STATUS=") or "\nSTATUS=" in d for d in sock.seen)


def test_gateway_process_notifies(broker: Broker, tmp_path: Path, gateway_process: type,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.name)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    proc = gateway_process(site_file(tmp_path, broker.port), tmp_path / "gateway.log")
    proc.start()

    async def scenario() -> None:
        await sock.expect("READY=1", within=20)
        await sock.expect("WATCHDOG=1", count=2)
        assert proc.terminate() == 0
        await sock.expect("STOPPING=1")

    try:
        asyncio.run(scenario())
    finally:
        sock.close()
