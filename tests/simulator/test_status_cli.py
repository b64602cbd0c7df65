"""``alarm-gateway status`` as a technician reads it, against a running (simulated) gateway:
one screen, each part judged, exit 0 healthy, 1 trouble naming it, 2 no gateway."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mqtt_helpers import Broker
from sim_helpers import copy_site

from gateway.cli import main
from gateway.config.schema import load_config
from simulator.rig import SimulatedSite

pytestmark = pytest.mark.timeout(90)


def status(capsys: pytest.CaptureFixture[str], site: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["status", "-c", str(site), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def until(check: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_status_on_one_screen(tmp_path: Path, broker: Broker,
                              capsys: pytest.CaptureFixture[str]) -> None:
    site_file = copy_site(tmp_path, broker.port)
    for secret in (tmp_path / "secrets").iterdir():
        secret.chmod(0o600)
    code, out, err = status(capsys, site_file)
    assert code == 2 and "no gateway answers for site bvdk-tinh" in err

    config = load_config(site_file)
    with SimulatedSite(config, mqtt_url=f"mqtt://127.0.0.1:{broker.port}") as site:
        code, out, err = status(capsys, site_file)
        assert "using its running simulation" in err  # the site's own file finds it
        assert code == 0, out
        assert "Bệnh viện Đa khoa Tỉnh Hòa Bình (bvdk-tinh): HEALTHY" in out
        for part in ("broker    ok", "modem     ok", "registered LTE", "signal -73 dBm",
                     "hotline   ok", "serial    ok", "journal   ok", "disk      ok",
                     "devices   ok       all normal", "alarms    none"):
            assert part in out, part

        site.drain("exam-bed-21", 2300)
        site.press("er-desk-1")
        until(lambda: "exam-bed-21 low battery 2300 mV" in status(capsys, site_file)[1])
        code, out, _ = status(capsys, site_file)
        assert code == 1 and "TROUBLE (1)" in out
        assert "devices   TROUBLE" in out
        assert "escalated" in out and "er-desk-1 since" in out  # the open alarm, local time

        code, out, _ = status(capsys, site_file, "--json")
        doc = json.loads(out)
        assert code == 1 and doc["healthy"] is False
        assert doc["troubles"] == ["devices: er-desk-1 alarm; exam-bed-21 low battery 2300 mV"]
        assert doc["health"]["modem"]["registered"] is True

        broker.stop()
        until(lambda: "NOT connected" in status(capsys, site_file)[1])
    code, out, err = status(capsys, site_file)
    assert code == 2
