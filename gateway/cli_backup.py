"""``alarm-gateway backup -c FILE DEST`` and ``alarm-gateway restore ARCHIVE [--force]``.

Arguments and one-line answers only; the work is in :mod:`gateway.ops.backup`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config.schema import load_config
from gateway.core.errors import CommandError
from gateway.ops.backup import backup, read_manifest, restore
from gateway.ops.locate import answers
from gateway.paths import CONTROL_SOCKET


def add_backup_verbs(verb: Callable[..., argparse.ArgumentParser]) -> dict[str, Any]:
    """Add ``backup`` and ``restore``; return their handlers."""
    b = verb("backup", "back up the journal (online, consistent), registry, config and the "
                       "files it names into one owner-only archive")
    b.add_argument("dest", metavar="DEST", help="the archive (.tar.gz) or a folder for a dated one")
    r = verb("restore", "put a backup's files back where they were (the gateway stopped)",
             needs_config=False)
    r.add_argument("archive", metavar="ARCHIVE", help="a file made by `alarm-gateway backup`")
    r.add_argument("--force", action="store_true",
                   help="replace existing files (each kept as <name>.before-restore)")
    r.add_argument("--list", action="store_true", help="only list what the archive holds")
    r.add_argument("--root", metavar="DIR", help="restore under DIR (a new SD card mounted "
                                                 "there) instead of /")
    return {"backup": cmd_backup, "restore": cmd_restore}


def cmd_backup(args: argparse.Namespace) -> int:
    """Write the archive; one line says what it holds."""
    config = load_config(args.config)
    dest = Path(args.dest)
    if args.dest.endswith("/"):
        dest.mkdir(parents=True, exist_ok=True)
    if not dest.is_dir() and not dest.name.endswith(".tar.gz"):
        raise CommandError(f"DEST {args.dest!r}: a folder (ending in /), or a file name "
                           "ending in .tar.gz")
    report = backup(config, Path(args.config), dest)
    events = (f"journal of {report.journal_events} events (integrity ok), "
              if report.journal_events is not None else "no journal yet, ")
    others = len(report.entries) - (report.journal_events is not None)
    print(f"{report.archive}: {events}{others} other files (0600: it holds secrets)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """List an archive, or put its files back (refused while the site's gateway answers)."""
    archive = Path(args.archive)
    manifest = read_manifest(archive)
    files = manifest["files"]
    if args.list:
        print(f"{archive}: site {manifest.get('site')}, made {manifest.get('made_at')}, "
              f"journal of {manifest.get('journal_events')} events")
        for f in files:
            print(f"  {f['mode']:04o} {f.get('owner') or '?'}:{f.get('group') or '?'} "
                  f"{f['size']:>10}  {f['path']}")
        return 0
    root = Path(args.root) if args.root else None
    socket = Path(manifest["storage"]) / CONTROL_SOCKET
    if root is None and answers(socket):
        raise CommandError(f"a gateway of site {manifest.get('site')} is running "
                           f"({socket}): stop it first (systemctl stop alarm-gateway)")
    entries = restore(archive, force=args.force, root=root)
    where = f" under {root}" if root else ""
    print(f"restored {len(entries)} files of site {manifest.get('site')} "
          f"(made {manifest.get('made_at')}){where}; start the gateway: "
          "systemctl start alarm-gateway", file=sys.stdout)
    return 0
