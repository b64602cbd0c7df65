"""Shared fixtures: a real mosquitto on a free loopback port, site configs, gateway processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mqtt_helpers import Broker, MqttCollector  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on 127.0.0.1 for one test; ``restart()`` keeps its port."""
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed (make test installs it)")
    b = Broker(MOSQUITTO, free_port(), tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def collector(broker: Broker) -> Iterator[MqttCollector]:
    c = MqttCollector(broker.port)
    c.start("#")
    yield c
    c.stop()


def write_site(tmp_path: Path, port: int, extra: str = "", devices: str | None = None) -> Path:
    """A small two-ward site with GPIO buttons, pointing at the test broker."""
    devices = devices if devices is not None else DEFAULT_DEVICES
    text = f"""
[site]
id = "bv-test"
name = "Bệnh viện Thử nghiệm"
short_name = "BV Thử nghiệm"
address = "1 Đường Thử, Hà Nội"
security_desk_phone = "+84240000000"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"
short_name = "Cấp cứu"

[[wards]]
id = "kham-benh"
name = "Khoa Khám bệnh"
short_name = "Khám bệnh"
{devices}
[mqtt]
url = "mqtt://127.0.0.1:{port}"
keepalive_s = 5

[storage]
path = "{tmp_path / 'var'}"

[health]
interval_s = 2
{extra}
"""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


DEFAULT_DEVICES = """
[[devices]]
id = "er-desk-1"
ward = "cap-cuu"
room = "Quầy tiếp đón"
kind = "panic_button"
pin = 17
bounce_ms = 20
hold_s = 1.0

[[devices]]
id = "exam-3"
ward = "kham-benh"
room = "Phòng khám 3"
kind = "panic_button"
pin = 27
"""


class GatewayProcess:
    """``alarm-gateway run --simulate`` as a real child process."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.config = config
        self.log = log
        self.extra = extra  # more arguments for ``run`` (``--new-journal``)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "-c", str(self.config), "--simulate",
             *self.extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )

    def control(self, payload: dict[str, object], timeout: float = 10.0) -> dict[str, object]:
        from gateway.config.schema import load_config
        from gateway.ops.control import request_sync
        from gateway.paths import control_path

        path = control_path(load_config(self.config))
        deadline = time.monotonic() + timeout
        while True:
            try:
                return request_sync(path, payload, timeout=timeout)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def wait_ready(self, timeout: float = 15.0) -> None:
        self.control({"cmd": "ping"}, timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


LOG_TAIL_LINES = 120


@pytest.fixture
def gateway_process(tmp_path: Path, request: pytest.FixtureRequest
                    ) -> Iterator[type[GatewayProcess]]:
    """Gateway child processes, killed after the test. When the test failed, the tail of
    each one's log is printed, so a failure seen only in CI can be read afterwards."""
    started: list[GatewayProcess] = []

    class Tracked(GatewayProcess):
        def start(self) -> None:
            super().start()
            started.append(self)

    yield Tracked
    for proc in started:
        proc.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for proc in started:
            lines = proc.log.read_text(errors="replace").splitlines() if proc.log.exists() else []
            print(f"--- last {LOG_TAIL_LINES} lines of {proc.log} ---")
            print("\n".join(lines[-LOG_TAIL_LINES:]))
