"""The ``report`` verb: which month, which files, then read, render, write."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config.schema import SiteConfig
from gateway.report.period import parse_month
from gateway.report.texts import Lang


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """``month`` is ``YYYY-MM`` or None (the previous month); ``html``/``pdf`` are output
    paths; ``out_dir`` names both after the site and month when given."""

    month: str | None
    html: Path | None
    pdf: Path | None
    out_dir: Path | None
    lang: Lang


def outputs(config: SiteConfig, req: ReportRequest, label: str) -> tuple[Path | None, Path | None]:
    """The HTML and PDF paths to write; with neither asked for, the HTML in the current
    folder, named ``<site>-report-<YYYY-MM>.html``."""
    stem = f"{config.site.id}-report-{label}"
    html, pdf = req.html, req.pdf
    if req.out_dir is not None:
        req.out_dir.mkdir(parents=True, exist_ok=True)
        html = html or req.out_dir / f"{stem}.html"
        pdf = pdf or req.out_dir / f"{stem}.pdf"
    if html is None and pdf is None:
        html = Path(f"{stem}.html")
    return html, pdf


def run_report(config: SiteConfig, req: ReportRequest, journal: Path) -> int:
    """Build the month's report from ``journal`` and write what ``req`` asks for."""
    from gateway.report.model import build_report
    from gateway.report.render import render_html, require_extra, write_pdf, write_text

    month = parse_month(req.month, config.site.timezone, time.time())
    html_path, pdf_path = outputs(config, req, month.label)
    require_extra(pdf=pdf_path is not None)
    report = build_report(config, journal, month, time.time())
    html = render_html(report, req.lang)
    if html_path is not None:
        write_text(html, html_path)
        print(f"wrote {html_path}")
    if pdf_path is not None:
        write_pdf(html, pdf_path)
        print(f"wrote {pdf_path}")
    alarms = report.totals
    print(f"{config.site.id} {month.label}: {alarms.total} alarms, {alarms.drills} drills, "
          f"{len(report.never_police_acked)} never acknowledged by the police"
          + (f"; {report.malformed} damaged journal rows left out" if report.malformed else ""),
          file=sys.stderr)
    return 0
