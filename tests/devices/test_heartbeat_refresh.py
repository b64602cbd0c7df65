"""Heartbeats refresh ``device/<id>/state`` (SPEC §2) only when it says something new, so a
site of a hundred nodes heartbeating every minute does not rewrite a hundred documents a
minute on the SD card."""

from __future__ import annotations

from pathlib import Path

from alarms.alarm_helpers import site

from gateway.core.events import EventDraft, EventType
from gateway.devices.state import HEARTBEAT_REFRESH_S, DeviceStates

T0 = 1_790_000_000.0


def fresh(tmp_path: Path) -> DeviceStates:
    states = DeviceStates(site(tmp_path))
    states.process(EventDraft(EventType.BOOT, device="er-1", detail={"batt_mv": 3000}, ts=T0))
    assert states.take_refreshed() == ({}, {})
    return states


def test_the_first_heartbeat_after_a_start_is_published(tmp_path: Path) -> None:
    states = DeviceStates(site(tmp_path))
    states.note_seen("er-1", T0, 2990)
    retained, kv = states.take_refreshed()
    assert retained["device/er-1/state"]["battery_mv"] == 2990
    assert kv["device:er-1"]["battery_mv"] == 2990
    assert states.take_refreshed() == ({}, {}), "taken once"


def test_jitter_is_not_published_a_real_drop_is(tmp_path: Path) -> None:
    states = fresh(tmp_path)
    for i, mv in enumerate((2990, 3010, 2975, 2960)):
        states.note_seen("er-1", T0 + 60 * (i + 1), mv)
    assert states.take_refreshed() == ({}, {}), "under 50 mV from what was published"
    states.note_seen("er-1", T0 + 300, 2940)
    retained, _ = states.take_refreshed()
    assert retained["device/er-1/state"]["battery_mv"] == 2940


def test_last_seen_is_refreshed_hourly(tmp_path: Path) -> None:
    states = fresh(tmp_path)
    states.note_seen("er-1", T0 + HEARTBEAT_REFRESH_S - 60, 3000)
    assert states.take_refreshed() == ({}, {})
    states.note_seen("er-1", T0 + HEARTBEAT_REFRESH_S, 3000)
    retained, _ = states.take_refreshed()
    assert retained["device/er-1/state"]["last_seen"] > "2026"


def test_a_recovered_battery_clears_the_trouble_at_once(tmp_path: Path) -> None:
    states = fresh(tmp_path)
    states.process(EventDraft(EventType.LOW_BATTERY, device="er-1", value=2550, ts=T0 + 10))
    assert states.document("er-1")["state"] == "trouble"
    states.note_seen("er-1", T0 + 20, 3000)  # a new battery: a heartbeat says so
    retained, _ = states.take_refreshed()
    assert retained["device/er-1/state"]["state"] == "normal"


def test_a_refused_refresh_is_offered_again(tmp_path: Path) -> None:
    states = fresh(tmp_path)
    states.note_seen("er-1", T0 + 60, 2800)
    retained, _ = states.take_refreshed()
    states.refresh_again([key.split("/")[1] for key in retained])
    again, _ = states.take_refreshed()
    assert again["device/er-1/state"]["battery_mv"] == 2800
