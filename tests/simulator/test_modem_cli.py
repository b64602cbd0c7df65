"""``alarm-gateway modem`` as a technician with gammu habits uses it: through the running
gateway (which owns the port), and directly on the modem when no gateway runs, where a
message waiting on the SIM is listed and left there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_helpers import Broker
from sim_helpers import copy_site
from waiting import poll_until as until

from gateway.cli import main
from gateway.config.schema import load_config
from simulator.modem import ModemSimulator
from simulator.rig import SimulatedSite

pytestmark = pytest.mark.timeout(90)


def site_file(tmp_path: Path, broker_port: int, modem_port: str | None = None) -> Path:
    path = copy_site(tmp_path, broker_port)
    for secret in (tmp_path / "secrets").iterdir():
        secret.chmod(0o600)
    if modem_port:
        path.write_text(path.read_text(encoding="utf-8").replace("/dev/ttyUSB2", modem_port),
                        encoding="utf-8")
    return path


def modem(capsys: pytest.CaptureFixture[str], site: Path, *args: str) -> tuple[int, str, str]:
    code = main(["modem", "-c", str(site), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_modem_tools_through_the_running_gateway(tmp_path: Path, broker: Broker,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = site_file(tmp_path, broker.port)
    with SimulatedSite(load_config(path), mqtt_url=f"mqtt://127.0.0.1:{broker.port}") as site:
        code, out, _ = modem(capsys, path, "identify")
        assert code == 0, out
        assert "through the running gateway" in out
        for row in ("Manufacturer  Quectel", "Model         EG25", "IMEI          867698040000001",
                    "SIM ICCID     89840480000000000011", "Operator      Viettel",
                    "Network       registered, LTE, home network", "Signal        -73 dBm (good)"):
            assert row in out, row

        code, out, _ = modem(capsys, path, "send", "0912000113", "Thử", "nghiệm")
        assert code == 0 and "sent to 0912000113 in 1 part" in out
        assert [(m.target, m.text) for m in site.police()] == [("+84912000113", "Thử nghiệm")]

        assert site.faults is not None
        site.faults.sms_from("+84900000000", "hello")
        def shows(op: str, text: str) -> str:
            out = modem(capsys, path, op)[1]
            return out if text in out else ""

        out = until(lambda: shows("inbox", "'hello' ->"), 15, 0.2, what="the reply journaled")
        assert "'hello' -> ignored: sender is not a configured police number" in out

        assert site.modem is not None
        site.modem.creg = site.modem.cereg = 2  # searching
        out = until(lambda: shows("signal", "NOT registered"), 15, 0.2, what="registration lost")
        assert "Operator      (none)" in out


@pytest.fixture
def sim_modem() -> Iterator[ModemSimulator]:
    sim = ModemSimulator()
    sim.start()
    yield sim
    sim.stop()


def test_modem_tools_directly_when_no_gateway_runs(tmp_path: Path, sim_modem: ModemSimulator,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.features.modem_tools.DIRECT_START_S", 2.0)
    path = site_file(tmp_path, 1, sim_modem.port)
    code, out, _ = modem(capsys, path, "identify")
    assert code == 0, out
    assert "directly (no gateway runs)" in out and "Model         EG25" in out

    sim_modem.deliver_sms("+84912000113", "OK 0427")
    code, out, _ = modem(capsys, path, "inbox")
    assert code == 0 and "On the SIM: 1 message(s)" in out
    assert "from +84912000113: OK 0427" in out
    assert len(sim_modem.stored()) == 1  # listed, not consumed: the gateway will read it

    code, out, _ = modem(capsys, path, "send", "+84912000113", "test")
    assert code == 0 and "in 1 part" in out

    sim_modem.silent = True
    code, out, err = modem(capsys, path, "signal")
    assert code == 1 and "does not answer" in err


def test_modem_without_a_modem_section_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = site_file(tmp_path, 1)
    text = path.read_text(encoding="utf-8")
    start = text.index("[modem]")
    path.write_text(text[:start] + text[text.index("[escalation.http]"):], encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('[escalation.sms]\nnumbers = ["+84912000113"]\n'
                                 'drill_numbers = ["+84912000999"]\nmin_interval_s = 0\n', ""),
                    encoding="utf-8")
    code, _, err = modem(capsys, path, "identify")
    assert code == 2 and "has no [modem] section" in err
