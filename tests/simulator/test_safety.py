"""A simulator run can never reach a real police channel: the derived config targets only
the local simulators, and a config that would not is refused before anything starts."""

from __future__ import annotations

import io
import os
import tomllib
from pathlib import Path

import pytest
from mqtt_helpers import Broker
from sim_helpers import EXAMPLES, sim_config, sim_raw

from gateway.config.schema import load_config, validate_config
from simulator.derive import (
    Endpoints,
    SimulationError,
    derive,
    safety_problems,
    tighten_secrets,
    to_toml,
    write_derived,
)
from simulator.rig import SimulatedSite

ENDS = Endpoints(bus_port="/tmp/x/bus/ttyBUS0", modem_port="/dev/pts/97",
                 hotline_url="http://127.0.0.1:40001/alarm")


def test_real_hotline_and_modem_are_rewritten_to_the_simulators(tmp_path: Path) -> None:
    config = sim_config(tmp_path)
    assert config.escalation.http is not None
    assert config.escalation.http.url.startswith("https://police-hotline.example.org")
    path, derived = write_derived(config, ENDS)
    assert derived.escalation.http is not None
    assert derived.escalation.http.url == "http://127.0.0.1:40001/alarm"
    assert derived.escalation.http.drill_url == "http://127.0.0.1:40001/drill"
    assert derived.modem is not None and derived.modem.port == "/dev/pts/97"
    assert derived.serial is not None and derived.serial.port == "/tmp/x/bus/ttyBUS0"
    assert derived.simulation is True
    assert derived.storage.path == str(tmp_path / "var" / "simulate")
    assert safety_problems(derived, ENDS) == []
    text = path.read_text(encoding="utf-8")
    assert "example.org" not in text and "/dev/ttyUSB2" not in text and "ttyAMA0" not in text
    assert text.startswith("# SIMULATION")
    # the same site otherwise: devices, wards, policy, numbers, secrets
    assert [d.id for d in derived.devices] == [d.id for d in config.devices]
    assert derived.policy == config.policy
    assert derived.escalation.sms == config.escalation.sms
    assert derived.site == config.site


def test_loopback_names_and_foreign_ports_are_refused(tmp_path: Path) -> None:
    config = sim_config(tmp_path)
    for url in ("https://police-hotline.example.org/v1/alarm", "http://localhost:40001/alarm",
                "http://10.0.0.5:40001/alarm", "http://127.0.0.1:40002/alarm"):
        doc = derive(config, ENDS)
        doc["escalation"]["http"]["url"] = url
        problems = safety_problems(validate_config(doc, base_dir=EXAMPLES), ENDS)
        assert any("escalation.http.url" in p for p in problems), url
    doc = derive(config, ENDS)
    doc["modem"]["port"] = "/dev/ttyUSB2"
    doc["simulation"] = False
    problems = safety_problems(validate_config(doc, base_dir=EXAMPLES), ENDS)
    assert any("modem.port '/dev/ttyUSB2'" in p for p in problems)
    assert "simulation is not true" in problems


def test_a_derived_config_that_is_not_safe_is_never_written(tmp_path: Path) -> None:
    config = sim_config(tmp_path)
    unsafe = Endpoints(ENDS.bus_port, ENDS.modem_port, "https://police.example.org/alarm")
    with pytest.raises(SimulationError, match="refusing to simulate"):
        write_derived(config, unsafe)
    assert not (tmp_path / "var" / "simulate" / "simulate.toml").exists()


def test_running_site_targets_only_its_simulators(tmp_path: Path, broker: Broker) -> None:
    with SimulatedSite(sim_config(tmp_path), mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
                       start_gateway=False) as site:
        assert site.derived_path is not None and site.hotline and site.modem and site.bus
        derived = load_config(site.derived_path)  # what the gateway will read
        assert derived.escalation.http is not None
        assert derived.escalation.http.url == site.hotline.url
        assert derived.escalation.http.url.startswith("http://127.0.0.1:")
        assert derived.modem is not None and derived.modem.port == site.modem.port
        assert os.path.realpath(site.bus.port).startswith("/dev/pts/")
        assert derived.serial is not None and derived.serial.port == site.bus.port


def test_simulate_refuses_a_site_whose_gateway_is_running(tmp_path: Path, broker: Broker,
                                                          gateway_process) -> None:  # type: ignore[no-untyped-def]
    from simulator.cli import run_simulate

    config = sim_config(tmp_path, mqtt={"url": f"mqtt://127.0.0.1:{broker.port}"})
    production = tmp_path / "production.toml"
    doc = derive(config, ENDS)  # then without serial, modem and hotline: GPIO only
    for key in ("serial", "modem", "escalation"):
        doc.pop(key, None)
    doc["devices"] = [d for d in doc["devices"] if d.get("input") != "serial"]
    doc["storage"]["path"] = str(tmp_path / "var")
    production.write_text(to_toml(doc), encoding="utf-8")
    gw = gateway_process(production, tmp_path / "gw.log")
    gw.start()
    gw.wait_ready()
    with pytest.raises(SimulationError, match="a gateway is running for this site"):
        run_simulate(config, None, stdin=io.StringIO("quit\n"), stdout=io.StringIO())


def test_secret_modes_are_tightened_only_where_loose(tmp_path: Path) -> None:
    raw = sim_raw(tmp_path)
    for name in ("hotline.secret", "node11.key", "node12.key"):
        (tmp_path / "secrets").mkdir(exist_ok=True)
        (tmp_path / "secrets" / name).write_text((EXAMPLES / "secrets" / name).read_text())
        (tmp_path / "secrets" / name).chmod(0o644)
    (tmp_path / "secrets" / "node12.key").chmod(0o600)
    site = tmp_path / "site.toml"
    site.write_text(to_toml(raw), encoding="utf-8")
    changed = tighten_secrets(site)
    assert len(changed) == 2 and all("was 644" in line for line in changed)
    assert all((tmp_path / "secrets" / n).stat().st_mode & 0o777 == 0o600
               for n in ("hotline.secret", "node11.key", "node12.key"))
    load_config(site)  # the checker accepts it now


def test_toml_writer_round_trips() -> None:
    doc = {"a": 'quote " back \\ tab\t é Khoa Cấp cứu', "n": 3, "f": 0.5, "b": False,
           "l": ["+84912000113", "x"], "t": {"k": 1, "u": {"deep": True}},
           "arr": [{"id": "a", "x": [1, 2]}, {"id": "b"}], "odd key": 1}
    assert tomllib.loads(to_toml(doc)) == doc


def test_the_embedded_broker_and_console_stay_on_this_machine(tmp_path: Path) -> None:
    """With the simulator's own broker the site's broker credentials are dropped (it takes
    none), and the simulated console listens on the loopback interface only."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here\n")
    config = sim_config(tmp_path, mqtt={"url": "mqtts://broker.hospital.lan:8883",
                                        "username": "gw", "ca_file": str(ca)},
                        console={"listen": "127.0.0.1:8443"})
    ends = Endpoints(ENDS.bus_port, ENDS.modem_port, ENDS.hotline_url, "mqtt://127.0.0.1:1999",
                     embedded_broker=True, console_listen="127.0.0.1:9443")
    doc = derive(config, ends)
    assert doc["mqtt"]["url"] == "mqtt://127.0.0.1:1999"
    assert "username" not in doc["mqtt"] and "ca_file" not in doc["mqtt"]
    assert doc["console"]["listen"] == "127.0.0.1:9443"


def dc09_escalation(tmp_path: Path) -> dict[str, object]:
    """The example site's escalation plus a real-looking receiving centre with a key."""
    key = tmp_path / "arc.key"
    key.write_bytes(b"0123456789ABCDEF\n")
    key.chmod(0o600)
    raw = sim_raw(tmp_path)
    return {**raw["escalation"], "dc09": {"receivers": [
        {"name": "arc", "host": "arc.example.org", "port": 9000, "account": "1A2B",
         "key_file": str(key)}]}}


def test_receiving_centres_are_rewritten_to_the_simulated_arc(tmp_path: Path) -> None:
    config = sim_config(tmp_path, escalation=dc09_escalation(tmp_path))
    ends = Endpoints(ENDS.bus_port, ENDS.modem_port, ENDS.hotline_url, arc_port=40009)
    path, derived = write_derived(config, ends)
    assert derived.escalation.dc09 is not None
    [arc] = derived.escalation.dc09.receivers
    assert (arc.host, arc.port, arc.account) == ("127.0.0.1", 40009, "1A2B")
    assert "arc.example.org" not in path.read_text(encoding="utf-8")
    with pytest.raises(SimulationError, match="the simulated ARC is not running"):
        write_derived(config, ENDS)
    doc = derive(config, ends)
    for host, port in (("arc.example.org", 40009), ("127.0.0.1", 40010),
                       ("localhost", 40009)):
        doc["escalation"]["dc09"]["receivers"][0].update(host=host, port=port)
        problems = safety_problems(validate_config(doc, base_dir=EXAMPLES), ends)
        assert any("escalation.dc09.receivers[0]" in p and "not the simulated ARC" in p
                   for p in problems), (host, port)


def test_running_site_with_a_centre_starts_the_arc(tmp_path: Path, broker: Broker) -> None:
    config = sim_config(tmp_path, escalation=dc09_escalation(tmp_path))
    with SimulatedSite(config, mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
                       start_gateway=False) as site:
        assert site.derived is not None and site.arc is not None and site.arc.running
        dc09 = site.derived.escalation.dc09
        assert dc09 is not None and dc09.receivers[0].port == site.arc.port
        assert [a.key for a in site.arc.accounts] == [b"0123456789ABCDEF"]
