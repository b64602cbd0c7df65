"""HTML and PDF from a :class:`MonthReport`: jinja2 lays out the page, matplotlib draws
the charts (inline SVG), WeasyPrint prints the same page on A4.

These three are the ``report`` extra (``pip install 'ward-alarm-gateway[report]'``), not
needed to run the gateway: :func:`require_extra` turns their absence into one line naming
the extra. The HTML is self-contained (styles and charts inline, no fonts or scripts
fetched), so it opens on any PC with no network.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from gateway.core.errors import GatewayError, MissingExtraError
from gateway.report.model import MonthReport
from gateway.report.texts import Lang

EXTRA = "ward-alarm-gateway[report]"
PACKAGES = {"jinja2": "jinja2", "matplotlib": "matplotlib", "weasyprint": "weasyprint"}
TEMPLATES = Path(__file__).with_name("templates")


def require_extra(*, pdf: bool) -> None:
    """Raise :class:`MissingExtraError` (one line) if a package of the extra is missing.
    WeasyPrint also needs the Pango library of the system; its absence is named too."""
    wanted = [m for m in PACKAGES if pdf or m != "weasyprint"]
    missing = []
    for module in wanted:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(PACKAGES[module])
        except OSError as exc:  # weasyprint without libpango: "cannot load library ..."
            raise MissingExtraError(
                f"the PDF needs the Pango library (apt-get install libpango-1.0-0 "
                f"libpangoft2-1.0-0): {str(exc).splitlines()[0][:120]}") from None
    if missing:
        raise MissingExtraError(f"the report needs the optional packages of its extra: "
                                f"pip install '{EXTRA}' (missing: {', '.join(missing)})")


def render_html(report: MonthReport, lang: Lang) -> str:
    """The report as one self-contained HTML page in ``lang``."""
    import jinja2

    from gateway.report.view import build_view, context

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["css_string"] = css_string
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    template = env.get_template("report.html.j2")
    return template.render(css=css, **context(build_view(report, lang)))


def css_string(text: object) -> Any:
    """Text made safe inside a double-quoted CSS string in a ``<style>`` element (the
    page footer): backslash, quote and angle brackets escaped the CSS way."""
    import markupsafe

    out = "".join(ch if ch.isprintable() else " " for ch in str(text))
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("<", "\\3c "), (">", "\\3e ")):
        out = out.replace(raw, escaped)
    return markupsafe.Markup(out)


def write_pdf(html: str, path: Path) -> None:
    """Print the page on A4 (fonts from the system: DejaVu Sans covers Vietnamese)."""
    import logging

    from weasyprint import HTML

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    try:
        HTML(string=html, base_url=str(TEMPLATES)).write_pdf(path)
    except OSError as exc:
        raise GatewayError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path``; a failure is one clear GatewayError."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GatewayError(f"cannot write {path}: {exc.strerror or exc}") from exc
