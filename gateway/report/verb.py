"""``alarm-gateway report``: its options, and the journal it reads (the site's own)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gateway.config.schema import load_config
from gateway.core.errors import JournalError
from gateway.ops.locate import missing_journal_hint
from gateway.paths import journal_path


def add_report_verb(
    verb: Callable[..., argparse.ArgumentParser],
) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add the ``report`` verb through ``verb``; returns its handler by name."""
    p = verb("report", "the monthly report for the meeting with the police (HTML, PDF)")
    p.add_argument("--month", metavar="YYYY-MM", help="default: the previous month")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="HTML file to write")
    p.add_argument("--pdf", metavar="FILE", type=Path, help="PDF file to write (A4)")
    p.add_argument("--out-dir", metavar="DIR", type=Path,
                   help="write <site>-report-<YYYY-MM>.html and .pdf into DIR")
    p.add_argument("--lang", choices=("vi", "en"), default="vi", help="language (default: vi)")
    return {"report": cmd_report}


def cmd_report(args: argparse.Namespace) -> int:
    """The site's own journal, never a simulation's: a simulated month is no month to
    review with the police (a missing journal names the simulation's, if one exists)."""
    from gateway.report.command import ReportRequest, run_report

    config = load_config(args.config)
    journal = journal_path(config)
    if not journal.exists():
        hint = missing_journal_hint(config)
        raise JournalError(f"no journal at {journal} (has the gateway run with this config?)"
                           + (f"; {hint}" if hint else ""))
    request = ReportRequest(args.month, args.output, args.pdf, args.out_dir, args.lang)
    return run_report(config, request, journal)
