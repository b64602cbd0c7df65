"""The node registry: survives reopening, never leaves a torn file, learn mode."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.core.clock import ManualClock
from gateway.serialbus.registry import AtomicJSONStorage, NodeRecord, Registry, RegistryError


def test_records_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    clock = ManualClock()
    reg = Registry(path, clock)
    first = reg.enroll(12, "er-bed-3", "/etc/alarm/keys/12.key")
    assert first.enrolled_at == clock.wall() and first.last_seq is None
    reg.save(replace(first, last_seq=4711, last_seen=clock.wall(), batt_mv=2950))
    reg.save_many([NodeRecord(13, "exam-1"), replace(first, last_seq=4712)])
    reg.close()

    again = Registry(path, clock)
    assert again.get(12) == replace(first, last_seq=4712)
    assert set(again.records()) == {12, 13}
    assert again.get(99) is None
    assert "key" not in json.dumps(again.records()[12].__class__.__name__)


def test_reenrol_keeps_replay_state(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "r.json", ManualClock())
    reg.save(replace(reg.enroll(12, "old-device"), last_seq=99))
    moved = reg.enroll(12, "new-device", "/k")
    assert (moved.device, moved.key_ref, moved.last_seq) == ("new-device", "/k", 99)
    reg.forget(12)
    assert reg.get(12) is None


def test_file_is_private_and_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    Registry(path, ManualClock()).enroll(1, "d")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["nodes"]["1"]["device"] == "d"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp files left


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    reg = Registry(path, ManualClock())
    reg.enroll(1, "d")
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(RegistryError):
        reg.enroll(2, "e")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert Registry(path, ManualClock()).get(2) is None


def test_crash_mid_write_leaves_old_file_intact(tmp_path: Path) -> None:
    """A real process dies half-way through writing the temp file (as at a power cut)."""
    path = tmp_path / "r.json"
    reg = Registry(path, ManualClock())
    reg.save(replace(reg.enroll(1, "d"), last_seq=7))
    reg.close()
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os
        from gateway.core.clock import ManualClock
        from gateway.serialbus.registry import Registry
        real_fsync = os.fsync
        def die(fd):
            os._exit(9)  # the temp file is written but never synced nor renamed
        reg = Registry({str(path)!r}, ManualClock())
        os.fsync = die
        reg.enroll(2, "e" * 10000)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert proc.returncode == 9
    assert path.read_bytes() == before
    assert Registry(path, ManualClock()).get(1) == replace(
        NodeRecord(1, "d", enrolled_at=ManualClock().wall()), last_seq=7
    )


def test_corrupt_file_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(RegistryError):
        Registry(path, ManualClock()).records()


def test_storage_reads_back_what_it_wrote(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "s.json")
    assert storage.read() is None
    storage.write({"t": {"1": {"a": 1}}})
    assert storage.read() == {"t": {"1": {"a": 1}}}
    assert AtomicJSONStorage(tmp_path / "s.json").read() == {"t": {"1": {"a": 1}}}


def test_learn_mode_pending_nodes(tmp_path: Path) -> None:
    clock = ManualClock()
    reg = Registry(tmp_path / "r.json", clock)
    reg.note_pending(77, batt_mv=3000)
    clock.advance(5)
    second = reg.note_pending(77, batt_mv=2990)
    assert (second.boots, second.last_seen - second.first_seen, second.batt_mv) == (2, 5, 2990)
    assert [p.node for p in Registry(tmp_path / "r.json", clock).pending()] == [77]
    reg.enroll(77, "new-button")
    assert reg.pending() == []


def test_node_listing_shows_what_the_running_bus_knows(tmp_path: Path) -> None:
    """The registry file lags the bus by up to flush_s; ``nodes`` answers from the bus."""
    from gateway.serialbus.enroll import node_listing

    reg = Registry(tmp_path / "registry.json", ManualClock())
    try:
        stored = reg.enroll(3, "bed-3", None)
        live = {3: replace(stored, last_seq=41, last_seen=1060.0, batt_mv=2950)}
        (shown,) = node_listing(reg, live)["enrolled"]
        assert (shown["last_seq"], shown["last_seen"], shown["batt_mv"]) == (41, 1060.0, 2950)
        (on_file,) = node_listing(reg)["enrolled"]
        assert on_file["last_seen"] is None
    finally:
        reg.close()
