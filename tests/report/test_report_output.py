"""``alarm-gateway report`` as a technician runs it: the HTML opens offline, the PDF is A4
and says, in Vietnamese, what the month held; English on request; one-line errors."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli import main
from report.conftest import BuiltMonth
from report.month_rig import at

PDFTOTEXT, PDFTOPPM = shutil.which("pdftotext"), shutil.which("pdftoppm")


@dataclass(frozen=True)
class Output:
    html: str
    pdf: Path
    run: subprocess.CompletedProcess[str]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=120)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def vietnamese(november_journal: BuiltMonth,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Output]:
    out = tmp_path_factory.mktemp("report-vi")
    before = sha256(november_journal.journal)
    run = run_cli("report", "-c", str(november_journal.path), "--month", "2026-11",
                  "-o", str(out / "r.html"), "--pdf", str(out / "r.pdf"))
    assert run.returncode == 0, run.stderr
    assert sha256(november_journal.journal) == before  # read-only
    yield Output((out / "r.html").read_text(encoding="utf-8"), out / "r.pdf", run)


def test_html_is_self_contained_vietnamese(vietnamese: Output,
                                           november_journal: BuiltMonth) -> None:
    html = vietnamese.html
    assert '<html lang="vi">' in html and "Báo cáo an ninh tháng 11/2026" in html
    assert html.count("<svg") == 3  # per day, response times, drill calendar
    # nothing to fetch: no scripts, links, images, imports, src or url() but the charts'
    # own clip paths (url(#id) points inside the page)
    assert not re.search(r"<script|<link|<img|@import|url\((?!#)|src=|href=\"http", html)
    a3 = next(line for line in html.splitlines() if "Khoa Nội: 0/1 buổi diễn tập" in line)
    assert a3
    assert "Mất kết nối MQTT (broker) 1 lần, tổng 20 phút" in html


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext missing (make test installs poppler-utils)")
def test_pdf_text_says_what_the_month_held(vietnamese: Output) -> None:
    text = subprocess.run([PDFTOTEXT or "", "-layout", str(vietnamese.pdf), "-"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "Báo cáo an ninh tháng 11/2026" in text
    assert "Bệnh viện Đa khoa Thử nghiệm" in text
    assert re.search(r"1 báo động đã gửi Công an nhưng không được xác nhận: \d{4} \(Khoa Khám",
                     text)
    assert "Khoa Nội: 0/1 buổi diễn tập trong tháng" in text
    assert "Cần bấm thử" in text and "2480 mV" in text
    assert "Phụ lục: danh sách báo động" in text
    info = subprocess.run(["pdfinfo", str(vietnamese.pdf)], capture_output=True, text=True,
                          timeout=60).stdout
    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info), info


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm missing (make test installs poppler-utils)")
def test_pdf_first_page_renders(vietnamese: Output, tmp_path: Path) -> None:
    from PIL import Image

    subprocess.run([PDFTOPPM or "", "-png", "-r", "50", "-f", "1", "-l", "1",
                    str(vietnamese.pdf), str(tmp_path / "p")], check=True, timeout=60)
    [png] = list(tmp_path.glob("p*.png"))
    image = Image.open(png).convert("RGB")
    width, height = image.size
    assert abs(height / width - 297 / 210) < 0.01
    r, _g, b = image.getpixel((width // 2, height // 12))  # the title band: dark blue
    assert b > r + 40 and r < 60
    colours = image.resize((64, 90)).getcolors(64 * 90) or []
    assert len(colours) > 50  # text, cards and a chart, not a blank page


def test_english(november_journal: BuiltMonth, tmp_path: Path) -> None:
    html = tmp_path / "en.html"
    assert main(["report", "-c", str(november_journal.path), "--month", "2026-11",
                 "-o", str(html), "--lang", "en"]) == 0
    text = html.read_text(encoding="utf-8")
    assert '<html lang="en">' in text and "Security report, 11/2026" in text
    assert "Points for the meeting" in text and "Khoa Nội: 0 of 1 drills this month" in text


def test_out_dir_names_files_after_site_and_month(november_journal: BuiltMonth,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.report import command

    monkeypatch.setattr(command, "require_extra", lambda pdf: None, raising=False)
    req = command.ReportRequest("2026-11", None, None, tmp_path / "reports", "vi")
    html, pdf = command.outputs(november_journal.config, req, "2026-11")
    assert (html, pdf) == (tmp_path / "reports" / "bvdk-test-report-2026-11.html",
                           tmp_path / "reports" / "bvdk-test-report-2026-11.pdf")


def test_missing_extra_is_one_line(november_journal: BuiltMonth, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint fails
    code = main(["report", "-c", str(november_journal.path), "--month", "2026-11",
                 "--pdf", str(tmp_path / "r.pdf")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "pip install 'ward-alarm-gateway[report]'" in err[0] and "weasyprint" in err[0]
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.parametrize("args, code, says", [
    (["--month", "2026-13"], 2, "--month '2026-13': use YYYY-MM"),
    (["--month", "nov"], 2, "use YYYY-MM"),
])
def test_bad_month(november_journal: BuiltMonth, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                   says: str) -> None:
    assert main(["report", "-c", str(november_journal.path), "-o",
                 str(tmp_path / "r.html"), *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_no_journal_is_one_line(tmp_path: Path, november_journal: BuiltMonth,
                                capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.toml"
    text = november_journal.path.read_text(encoding="utf-8")
    site.write_text(text.replace('path = "var"', f'path = "{tmp_path / "empty"}"'),
                    encoding="utf-8")
    (tmp_path / "hotline.secret").write_bytes((november_journal.folder / "hotline.secret")
                                              .read_bytes())
    (tmp_path / "hotline.secret").chmod(0o600)
    assert main(["report", "-c", str(site), "--month", "2026-11",
                 "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no journal at" in err[0]


def test_damaged_rows_are_left_out_counted_and_said(november_journal: BuiltMonth,
                                                    tmp_path: Path) -> None:
    """Hostile input: a row whose body is not JSON (a damaged card) and a broken retained
    alarm document. The report still comes out, every other figure intact, and says so."""
    import sqlite3

    site = tmp_path / "site.toml"
    site.write_text(november_journal.path.read_text(encoding="utf-8").replace(
        'path = "var"', f'path = "{tmp_path / "var"}"'), encoding="utf-8")
    (tmp_path / "var").mkdir()
    src = sqlite3.connect(f"file:{november_journal.journal}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp_path / "var" / "journal.sqlite3")
    src.backup(dst)
    src.close()
    dst.execute("UPDATE events SET body = '{\"type\": \"press' WHERE seq = (SELECT MIN(seq) "
                "FROM events WHERE type = 'test_report' AND ts >= ?)", (at(2, 0),))
    dst.execute("UPDATE retained SET payload = 'null}' WHERE topic = (SELECT MIN(topic) "
                "FROM retained WHERE topic LIKE 'alarm/%')")
    dst.commit()
    dst.close()
    (tmp_path / "hotline.secret").write_bytes((november_journal.folder / "hotline.secret")
                                              .read_bytes())
    (tmp_path / "hotline.secret").chmod(0o600)
    run = run_cli("report", "-c", str(site), "--month", "2026-11", "-o", str(tmp_path / "r.html"))
    assert run.returncode == 0, run.stderr
    assert "11 alarms, 3 drills" in run.stderr and "1 damaged journal rows left out" in run.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "1 dòng nhật ký hỏng không đọc được và không được tính" in html
    assert "Báo cáo kiểm tra định kỳ: 27/30" in html  # the damaged one was a periodic test
