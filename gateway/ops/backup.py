"""Backup and restore of one site: journal, registry, config and every file it names.

``alarm-gateway backup -c FILE DEST`` runs beside the live gateway. The journal is copied
with SQLite's online backup API (a consistent snapshot while the gateway keeps writing;
copying the file with ``cp`` could catch a half-written page or miss the WAL), and the copy
is checked with ``PRAGMA integrity_check`` before the archive is written. The other files
of the storage folder (the node registry, anything else the gateway keeps there) and the
config with every file it names (secrets, node keys, certificates) go in as they are, with
their modes and owners. A ``manifest.json`` lists each file's original path, mode, owner
and SHA-256, so a restore puts everything back where it was and can prove it is whole.

The archive holds secrets: it is written owner-only (0600) and should be kept like them.

``alarm-gateway restore ARCHIVE`` checks every file against the manifest first, refuses
while a gateway of the site answers, and refuses to overwrite existing files unless
``--force`` (they are then kept beside, as ``<name>.before-restore``).
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import io
import json
import os
import pwd
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.errors import CommandError, GatewayError
from gateway.paths import CONTROL_SOCKET, JOURNAL_FILE, SIMULATION_FOLDER, storage_dir

FORMAT = 1
MANIFEST = "manifest.json"
#: not data: the live socket, SQLite's side files (the backup API folds the WAL in)
SKIP_IN_STORAGE = (CONTROL_SOCKET, f"{JOURNAL_FILE}-wal", f"{JOURNAL_FILE}-shm",
                   f"{JOURNAL_FILE}-journal")
#: the config keys that name files: (section path, key); devices' ``key_file`` apart
FILE_KEYS = (("mqtt", "password_file"), ("mqtt", "ca_file"), ("mqtt", "client_cert"),
             ("mqtt", "client_key"), ("escalation", "http", "secret_file"),
             ("escalation", "http", "ca_file"), ("console", "tls_cert"), ("console", "tls_key"))


class BackupError(GatewayError):
    """A backup or restore could not be made whole (exit 1, one line)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One file in the archive: ``name`` inside it, ``path`` where it lives on the Pi."""

    name: str
    path: str
    mode: int
    owner: str | None
    group: str | None
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Report:
    """What one backup wrote: the archive, its files, the journal's event count."""

    archive: Path
    entries: tuple[Entry, ...]
    journal_events: int | None


def backup(config: SiteConfig, config_file: Path, dest: Path, *,
           now: float | None = None) -> Report:
    """Write the backup of the site of ``config`` (read from ``config_file``) to ``dest``
    (a folder: a dated name inside it)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    if dest.is_dir():
        dest = dest / f"alarm-gateway-{config.site.id}-{stamp}.tar.gz"
    if dest.exists():
        raise CommandError(f"{dest} exists; give a new file name or a folder")
    storage = storage_dir(config)
    entries: list[Entry] = []
    with tempfile.TemporaryDirectory(prefix="alarm-backup-") as tmp:
        staged: list[tuple[Entry, Path]] = []
        journal = storage / JOURNAL_FILE
        events = None
        if journal.exists():
            copy = Path(tmp) / JOURNAL_FILE
            events = _snapshot(journal, copy)
            staged.append((_entry(f"storage/{JOURNAL_FILE}", journal, copy), copy))
        for file in sorted(storage.iterdir()) if storage.is_dir() else []:
            if file.name in (JOURNAL_FILE, SIMULATION_FOLDER, *SKIP_IN_STORAGE):
                continue
            if file.is_file() and not file.is_symlink():
                staged.append((_entry(f"storage/{file.name}", file, file), file))
        kept = {Path(e.path) for e, _ in staged}
        for i, file in enumerate(_config_files(config, config_file)):
            if file not in kept:  # a config kept in the storage folder is in already
                staged.append((_entry(f"config/{i:02d}-{file.name}", file, file), file))
        entries = [e for e, _ in staged]
        manifest = {"format": FORMAT, "site": config.site.id, "made_at": stamp,
                    "storage": str(storage), "config": str(config_file.resolve()),
                    "journal_events": events, "files": [_jsonable(e) for e in entries]}
        _write_archive(dest, staged, manifest)
    return Report(dest, tuple(entries), events)


def _snapshot(journal: Path, copy: Path) -> int:
    """SQLite's online backup of ``journal`` into ``copy``, checked; its event count."""
    try:
        src = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
        try:
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst, pages=1024)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                check = dst.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise BackupError(f"the journal copy fails its integrity check: {check}")
                (count,) = dst.execute("SELECT COUNT(*) FROM events").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up the journal {journal}: {exc}") from exc
    return int(count)


def _config_files(config: SiteConfig, config_file: Path) -> list[Path]:
    """The config file and every file it names that exists, each once."""
    raw = config.model_dump(mode="json")
    names: list[Any] = []
    for keys in FILE_KEYS:
        value: Any = raw
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        names.append(value)
    names += [d.get("key_file") for d in raw.get("devices") or []]
    files = [config_file.resolve()]
    for name in names:
        if isinstance(name, str) and name:
            path = config.resolve(name)
            if path.is_file() and path not in files:
                files.append(path)
    return [f.resolve() for f in files]


def _entry(name: str, original: Path, content: Path) -> Entry:
    st = original.stat()
    digest = hashlib.sha256()
    with open(content, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return Entry(name, str(original.resolve()), st.st_mode & 0o7777, _user(st.st_uid),
                 _group(st.st_gid), digest.hexdigest(), content.stat().st_size)


def _write_archive(dest: Path, staged: list[tuple[Entry, Path]], manifest: dict[str, Any]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            body = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(body))
            for entry, content in staged:
                tar.add(content, arcname=entry.name, recursive=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise


# -- restore ------------------------------------------------------------------------------

def read_manifest(archive: Path) -> dict[str, Any]:
    """The archive's ``manifest.json``; ``BackupError`` when it is not one of ours."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise BackupError(f"{archive}: no {MANIFEST}")
            manifest = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{archive} is not an alarm-gateway backup: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: unknown backup format {manifest.get('format')!r}")
    return manifest


def restore(archive: Path, *, force: bool = False, root: Path | None = None) -> list[Entry]:
    """Put every file of ``archive`` back where it was (under ``root`` if given: a new
    SD card mounted elsewhere, or a test). Checks every SHA-256 before writing anything."""
    manifest = read_manifest(archive)
    entries = [Entry(**e) for e in manifest["files"]]
    with tempfile.TemporaryDirectory(prefix="alarm-restore-") as tmp, \
            tarfile.open(archive, "r:gz") as tar:
        staged: list[tuple[Entry, Path]] = []
        for i, entry in enumerate(entries):
            member = tar.extractfile(entry.name)
            if member is None:
                raise BackupError(f"{archive}: {entry.name} is missing")
            data = member.read()
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                raise BackupError(f"{archive}: {entry.name} is damaged (SHA-256 differs)")
            part = Path(tmp) / str(i)
            part.write_bytes(data)
            staged.append((entry, part))
        targets = [(_target(e.path, root), e, p) for e, p in staged]
        existing = [str(t) for t, _, _ in targets if t.exists()]
        if existing and not force:
            raise CommandError("these files exist (restore with --force keeps each as "
                               "<name>.before-restore): " + ", ".join(existing))
        for target, entry, part in targets:
            _put(part, target, entry)
    return entries


def _target(path: str, root: Path | None) -> Path:
    p = Path(path)
    return root / p.relative_to(p.anchor) if root is not None else p


def _put(part: Path, target: Path, entry: Entry) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if target.exists():
        os.replace(target, target.with_name(target.name + ".before-restore"))
    for side in ("-wal", "-shm"):  # a stale WAL beside a restored journal would corrupt it
        stale = target.with_name(target.name + side)
        if stale.exists():
            os.replace(stale, stale.with_name(stale.name + ".before-restore"))
    tmp = target.with_name(f".{target.name}.restoring")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(part.read_bytes())
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, entry.mode)
    if os.geteuid() == 0:
        uid = _uid(entry.owner)
        gid = _gid(entry.group)
        if uid is not None or gid is not None:
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
    os.replace(tmp, target)


def _jsonable(e: Entry) -> dict[str, Any]:
    return {"name": e.name, "path": e.path, "mode": e.mode, "owner": e.owner,
            "group": e.group, "sha256": e.sha256, "size": e.size}


def _user(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _group(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _uid(name: str | None) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid if name else None
    except KeyError:
        return None


def _gid(name: str | None) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid if name else None
    except KeyError:
        return None
