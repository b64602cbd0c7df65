"""``alarm-gateway backup`` / ``restore``: online and consistent while the journal is being
written, every file back where it was with its mode, damage detected before anything is
written, existing files never overwritten by surprise."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sqlite3
import tarfile
import threading
import uuid
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.schema import load_config
from gateway.core.clock import rfc3339
from gateway.core.errors import CommandError
from gateway.journal.store import Batch, Journal
from gateway.ops.backup import BackupError, backup, read_manifest, restore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _event(i: int) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "ts": rfc3339(1_795_935_600.0 + i),
            "_ts": 1_795_935_600.0 + i, "site": "bvdk-tinh", "ward": "cap-cuu", "room": "r",
            "device": "er-desk-1", "kind": "panic_button", "type": "press", "value": 0,
            "drill": False, "alarm_id": None}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The example simulated site in ``tmp_path``: its secrets (0600), a journal of 300
    events and a registry in its storage folder."""
    shutil.copytree(EXAMPLES / "secrets", tmp_path / "secrets")
    for secret in (tmp_path / "secrets").iterdir():
        secret.chmod(0o600)
    text = (EXAMPLES / "sim-site.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text.replace('path = "var/sim-site"', f'path = "{tmp_path / "var"}"'),
                    encoding="utf-8")
    (tmp_path / "var").mkdir(mode=0o700)
    _commit(tmp_path / "var" / "journal.sqlite3", range(300))
    registry = tmp_path / "var" / "registry.json"
    registry.write_text('{"nodes": {"11": {"device": "er-bed-11"}}}')
    registry.chmod(0o600)
    return path


def _commit(journal_file: Path, numbers: range, stop: threading.Event | None = None) -> int:
    async def go() -> int:
        journal = Journal(journal_file)
        journal.open()
        await journal.start()
        done = 0
        try:
            for i in numbers:
                if stop is not None and stop.is_set():
                    break
                await journal.commit(Batch(events=[_event(i)]))
                done += 1
        finally:
            await journal.stop()
            journal.close()
        return done

    return asyncio.run(go())


def _count(journal: Path) -> int:
    with sqlite3.connect(journal) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def test_backup_while_the_journal_is_written_then_restore_on_a_new_card(
        site: Path, tmp_path: Path) -> None:
    config = load_config(site)
    journal = tmp_path / "var" / "journal.sqlite3"
    stop, written = threading.Event(), [0]
    writer = threading.Thread(target=lambda: written.__setitem__(
        0, _commit(journal, range(300, 100_000), stop)))
    writer.start()
    try:
        while _count(journal) < 400:  # the writer is busy: back up mid-stream
            pass
        report = backup(config, site, tmp_path / "backup.tar.gz")
    finally:
        stop.set()
        writer.join(30)
    manifest = read_manifest(report.archive)
    assert 400 <= manifest["journal_events"] <= 300 + written[0]
    assert report.archive.stat().st_mode & 0o777 == 0o600  # it holds secrets
    names = sorted(Path(f["path"]).name for f in manifest["files"])
    assert names == ["hotline.secret", "journal.sqlite3", "node11.key", "node12.key",
                     "registry.json", "site.toml"]

    card = tmp_path / "new-card"
    restore(report.archive, root=card)
    inside = card / str(tmp_path).lstrip("/")
    assert _count(inside / "var" / "journal.sqlite3") == manifest["journal_events"]
    for name in ("secrets/hotline.secret", "secrets/node11.key", "var/registry.json", "site.toml"):
        assert (inside / name).read_bytes() == (tmp_path / name).read_bytes(), name
    assert (inside / "secrets" / "node11.key").stat().st_mode & 0o777 == 0o600
    assert load_config(inside / "site.toml").site.id == "bvdk-tinh"


def test_restore_never_overwrites_by_surprise(site: Path, tmp_path: Path) -> None:
    archive = backup(load_config(site), site, tmp_path / "b.tar.gz").archive
    with pytest.raises(CommandError, match="these files exist"):
        restore(archive)
    _commit(tmp_path / "var" / "journal.sqlite3", range(300, 310))  # work done since
    restore(archive, force=True)
    assert _count(tmp_path / "var" / "journal.sqlite3") == 300
    assert _count(tmp_path / "var" / "journal.sqlite3.before-restore") == 310


def test_a_damaged_archive_is_refused_before_anything_is_written(site: Path,
                                                                 tmp_path: Path) -> None:
    archive = backup(load_config(site), site, tmp_path / "b.tar.gz").archive
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(bad, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith("hotline.secret"):
                data = b"tampered\n"
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    card = tmp_path / "card"
    with pytest.raises(BackupError, match=r"hotline\.secret is damaged"):
        restore(bad, root=card)
    assert not card.exists()
    (tmp_path / "junk.tar.gz").write_bytes(os.urandom(300))
    with pytest.raises(BackupError, match="is not an alarm-gateway backup"):
        read_manifest(tmp_path / "junk.tar.gz")


def test_command_line(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "-c", str(site), f"{tmp_path / 'backups'}/"]) == 0
    out = capsys.readouterr().out
    assert "journal of 300 events (integrity ok), 5 other files (0600: it holds secrets)" in out
    archive = next((tmp_path / "backups").glob("alarm-gateway-bvdk-tinh-*.tar.gz"))
    assert main(["restore", str(archive), "--list"]) == 0
    assert "journal of 300 events" in capsys.readouterr().out
    assert main(["restore", str(archive)]) == 2
    assert "restore with --force" in capsys.readouterr().err
    assert main(["restore", str(archive), "--root", str(tmp_path / "card")]) == 0
    assert "restored 6 files of site bvdk-tinh" in capsys.readouterr().out
    assert main(["backup", "-c", str(site), str(tmp_path / "x.zip")]) == 2


def test_restore_refuses_while_a_gateway_of_the_site_answers(
        site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.ops.control import ControlServer

    archive = backup(load_config(site), site, tmp_path / "b.tar.gz").archive
    loop = asyncio.new_event_loop()
    server = ControlServer(tmp_path / "var" / "control.sock")

    async def ping(request: dict[str, object]) -> dict[str, object]:
        return {"pong": True}

    server.register("ping", ping)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        assert main(["restore", str(archive), "--force"]) == 2
        assert "a gateway of site bvdk-tinh is running" in capsys.readouterr().err
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(server.stop())
        loop.close()
    assert not (tmp_path / "var" / "journal.sqlite3.before-restore").exists()
