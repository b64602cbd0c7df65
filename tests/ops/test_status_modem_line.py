"""The technician's `status` line for the modem right after a start: the first poll has not
read the registration yet, which is not the same as "NOT registered"."""

from __future__ import annotations

from pathlib import Path

from alarms.alarm_helpers import site

from gateway.cli_status import judge

MODEM = {"present": True, "sim": "READY", "rssi_dbm": -71, "model": "SIM7600",
         "operator": "Viettel", "state": "ok", "trouble": []}


def modem_line(tmp_path: Path, **part: object) -> tuple[bool, str]:
    answer = {"health": {"modem": {**MODEM, **part}}}
    (line,) = [x for x in judge(answer, site(tmp_path)) if x.part == "modem"]
    return line.ok, line.text


def test_registration_not_read_yet_is_said_and_not_a_fault(tmp_path: Path) -> None:
    ok, text = modem_line(tmp_path, registered=False, registration_known=False)
    assert ok and "registration not read yet" in text and "NOT registered" not in text


def test_a_modem_that_is_not_registered_is_a_fault(tmp_path: Path) -> None:
    ok, text = modem_line(tmp_path, registered=False, registration_known=True,
                          state="trouble", trouble=["not registered"])
    assert not ok and "NOT registered" in text


def test_a_registered_modem_is_fine(tmp_path: Path) -> None:
    ok, text = modem_line(tmp_path, registered=True, registration_known=True, rat="lte")
    assert ok and "registered LTE" in text
