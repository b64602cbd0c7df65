"""Every shipped scenario passes against the shipped example site, edge to edge: a real
mosquitto, the gateway as a child process, firmware nodes on a pty, the modem and hotline
simulators. A wrong expectation fails with a report naming its step.

The whole file runs in about a minute: the scenarios' timers are seconds (sim-site.toml).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_helpers import Broker
from sim_helpers import ROOT, SCENARIOS, copy_site, sim_config

from gateway.core.errors import CommandError
from simulator.cli import run_simulate

pytestmark = pytest.mark.timeout(60)


def _url(broker: Broker) -> str:
    return f"mqtt://127.0.0.1:{broker.port}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_passes(scenario: Path, tmp_path: Path, broker: Broker) -> None:
    out = io.StringIO()
    code = run_simulate(sim_config(tmp_path), scenario, mqtt_url=_url(broker), stdout=out)
    assert code == 0, out.getvalue()
    assert "PASSED" in out.getvalue()


def test_all_required_scenarios_are_shipped() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"panic-press", "duress-hold", "security-ack", "hotline-down-sms", "mass-alarm",
            "node-silent", "drill"} <= names


WRONG = """
[scenario]
name = "expects the police for a press that is never made"

[[steps]]
action = "press"
device = "er-door-1"

[[steps]]
name = "police for the exam desk"
expect = "police"
device = "exam-desk-1"
within_s = 1.5

[[steps]]
action = "press"
device = "er-desk-1"
"""


def test_wrong_expectation_fails_naming_the_step(tmp_path: Path, broker: Broker) -> None:
    scenario = tmp_path / "wrong.toml"
    scenario.write_text(WRONG, encoding="utf-8")
    out = io.StringIO()
    code = run_simulate(sim_config(tmp_path), scenario, mqtt_url=_url(broker), stdout=out)
    report = out.getvalue()
    assert code == 1, report
    assert "FAILED at step 2 (police for the exam desk)" in report
    assert "no matching alarm reached the hotline in 1.5 s" in report
    assert "step 3" not in report  # the run stops at the failed step


def test_bad_scenario_is_a_usage_error_listing_every_problem(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[[steps]]\naction = "press"\ndevice = "nope"\n\n'
                        '[[steps]]\nexpect = "polis"\n\n[[steps]]\naction = "hotline"\n\n'
                        '[[steps]]\naction = "modem"\nmode = "500"\n',
                        encoding="utf-8")
    with pytest.raises(CommandError) as info:
        run_simulate(sim_config(tmp_path), scenario)
    text = str(info.value)
    assert "steps[0].device: unknown device 'nope'" in text
    assert "steps[1].expect: unknown expect 'polis'" in text
    assert "steps[2].mode: is required for hotline" in text
    assert "steps[3].mode: modem mode is one of online, offline, noreg, error, not '500'" in text


def test_command_line_runs_a_scenario_and_fixes_secret_modes(tmp_path: Path) -> None:
    """`alarm-gateway simulate` as a technician types it, on a fresh checkout's 0644
    secrets and with no broker running (the site's [mqtt].url answers nothing): chmod 600,
    its own broker, the console's URL, then the scenario passes (exit 0)."""
    from conftest import free_port

    site = copy_site(tmp_path, free_port())  # nobody listens there
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "simulate", "-c", str(site), "--scenario",
         str(ROOT / "examples" / "scenarios" / "panic-press.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chmod 600" in proc.stderr
    assert (tmp_path / "secrets" / "hotline.secret").stat().st_mode & 0o077 == 0
    assert "PASSED" in proc.stdout
    assert re.search(r"MQTT broker +mqtt://127\.0\.0\.1:\d+ \(embedded, this run only\)",
                     proc.stdout)
    assert re.search(r"desk console +http://127\.0\.0\.1:\d+/", proc.stdout)


ARC_SCENARIO = """
[scenario]
name = "a receiving centre NAKs once, then takes the panic and the drill"

[[steps]]
action = "arc"
mode = "nak"
times = 1

[[steps]]
action = "press"
device = "er-desk-1"

[[steps]]
name = "the centre has the panic"
expect = "arc"
code = "PA"
contains = "Cap cuu"

[[steps]]
action = "drill"
device = "er-desk-1"

[[steps]]
name = "the centre has the drill as RX"
expect = "arc"
code = "RX"
"""


def test_a_scenario_drives_and_checks_the_simulated_arc(tmp_path: Path, broker: Broker) -> None:
    from sim_helpers import sim_raw

    escalation = {**sim_raw(tmp_path)["escalation"], "dc09": {"receivers": [
        {"name": "arc", "host": "arc.example.org", "port": 9000, "account": "1A2B",
         "link_test_s": 0}]}}
    scenario = tmp_path / "arc.toml"
    scenario.write_text(ARC_SCENARIO, encoding="utf-8")
    out = io.StringIO()
    code = run_simulate(sim_config(tmp_path, escalation=escalation), scenario,
                        mqtt_url=_url(broker), stdout=out)
    assert code == 0, out.getvalue()
    assert "the ARC acknowledged" in out.getvalue() and " RX " in out.getvalue()
