"""``alarm-gateway status`` as a technician reads it, against a running (simulated) gateway:
one screen, each part judged, exit 0 healthy, 1 trouble naming it, 2 no gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mqtt_helpers import Broker
from sim_helpers import copy_site
from waiting import poll_until as until

from gateway.cli import main
from gateway.config.schema import load_config
from simulator.rig import SimulatedSite

pytestmark = pytest.mark.timeout(90)


def status(capsys: pytest.CaptureFixture[str], site: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["status", "-c", str(site), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


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
        # just started, the modem may not have been polled yet (registration unknown)
        until(lambda: status(capsys, site_file)[0] == 0)
        code, out, err = status(capsys, site_file)
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


def test_judging_reads_every_part_and_survives_odd_documents(tmp_path: Path) -> None:
    """Receivers (HTTP and DC-09), a failing ack stream, a modem that does not answer, a
    backlog getting old; and documents with parts missing or of the wrong type."""
    from sim_helpers import sim_config

    from gateway.cli_status import judge

    config = sim_config(tmp_path)
    health = {
        "broker": {"connected": True, "broker": "127.0.0.1:1883", "published": 5},
        "modem": {"present": False, "port": "/dev/ttyUSB2", "last_error": "timed out"},
        "receivers": {
            "city": {"delivery": {"delivered_at": "2026-12-03T13:00:00Z",
                                  "consecutive_failures": 0}},
            "dc09": {"delivery": {"last_ack": None, "consecutive_failures": 3},
                     "acks": {"failures": 2, "error": "refused"}},
        },
        "journal": {"last_seq": 9, "mqtt": {"backlog": 40, "oldest_undelivered_age_s": 600}},
        "disk_free_mb": 10,
    }
    lines = {x.part: x for x in judge({"health": health, "devices": {}}, config)}
    assert not lines["modem"].ok and "not answering on /dev/ttyUSB2: timed out" in lines["modem"].text
    assert not lines["receivers"].ok
    assert "city: last delivered 2026-12-03 20:00:00" in lines["receivers"].text
    assert "dc09: nothing delivered yet, 3 failure(s) in a row, ack stream failing (refused)" \
        in lines["receivers"].text
    assert not lines["journal"].ok and "mqtt backlog 40 (oldest 600 s)" in lines["journal"].text
    assert not lines["disk"].ok
    for odd in ({}, {"health": None}, {"health": {"broker": "x", "journal": [], "modem": 3,
                                                  "receivers": {"a": None}}}):
        parts = {x.part: x for x in judge(odd, config)}
        assert not parts["broker"].ok and not parts["journal"].ok
