"""The station report as a page: words (Vietnamese by default, English), charts, HTML, PDF.

The gateway report's stylesheet, charts and PDF printer are reused, so the hospital's and
the station's reports look alike at the joint meeting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.report.render import TEMPLATES as GATEWAY_TEMPLATES
from gateway.report.render import css_string
from gateway.report.texts import KINDS, Lang, Texts
from receiver.report import StationAlarm, StationReport

TEMPLATES = Path(__file__).with_name("templates")

_T: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo tiếp nhận báo động tháng {month}", "Alarm report, {month}"),
    "subtitle": ("Báo động khẩn cấp từ các bệnh viện — giao ban định kỳ",
                 "Hospitals' panic alarms — monthly review"),
    "period": ("Kỳ báo cáo", "Period"), "generated": ("Lập lúc", "Generated"),
    "page": ("Trang", "Page"),
    "k_alarms": ("Báo động thật", "Real alarms"), "k_drills": ("Diễn tập", "Drills"),
    "k_taken": ("Tiếp nhận (trung vị)", "Received (median)"),
    "k_never": ("Chưa tiếp nhận", "Never received"),
    "k_links": ("Mất liên lạc", "Link losses"), "k_sites": ("{n} bệnh viện", "{n} hospitals"),
    "k_worst": ("chậm nhất {dur}", "worst {dur}"), "k_lost": ("tổng {dur}", "{dur} in all"),
    "s_sites": ("1. Theo bệnh viện", "1. By hospital"),
    "s_steps": ("2. Thời gian xử lý của Công an", "2. Police response times"),
    "s_steps_note": ("Tính từ lúc báo động đến trung tâm; chỉ báo động thật.",
                     "From the moment the alarm reached the station; real alarms only."),
    "s_per_day": ("Báo động thật theo ngày và theo bệnh viện", "Real alarms per day, by hospital"),
    "s_links": ("3. Mất liên lạc với bệnh viện", "3. Hospitals' link losses"),
    "s_never": ("Báo động chưa được tiếp nhận", "Alarms never received by an officer"),
    "s_list": ("Phụ lục: danh sách báo động", "Appendix: every alarm"),
    "c_site": ("Bệnh viện", "Hospital"), "c_alarms": ("Báo động", "Alarms"),
    "c_drills": ("Diễn tập", "Drills"), "c_types": ("Loại", "Types"),
    "c_taken": ("Tiếp nhận (TV)", "Received (med.)"), "c_scene": ("Đến nơi (TV)", "On scene (med.)"),
    "c_closed": ("Kết thúc (TV)", "Closed (med.)"), "c_never": ("Chưa nhận", "Never received"),
    "c_losses": ("Mất liên lạc", "Link losses"), "c_refused": ("Bị từ chối", "Refused"),
    "c_tests": ("Kiểm tra ĐK", "Periodic tests"),
    "c_step": ("Bước", "Step"), "c_count": ("Số báo động", "Alarms"),
    "c_median": ("Trung vị", "Median"), "c_p90": ("Phân vị 90", "90th pct"),
    "c_worst": ("Chậm nhất", "Worst"), "c_from": ("Từ", "From"), "c_to": ("Đến", "To"),
    "c_len": ("Thời lượng", "Length"), "c_code": ("Mã", "Code"), "c_when": ("Lúc", "At"),
    "c_type": ("Loại", "Type"), "c_by": ("Cán bộ", "Officer"), "c_note": ("Ghi chú", "Note"),
    "still": ("chưa khôi phục", "not restored"), "none": ("Không có.", "None."),
    "drill": ("diễn tập", "drill"),
    "chart_alarms": ("Số báo động", "Alarms"), "chart_day": ("Ngày trong tháng", "Day of the month"),
    "chart_seconds": ("Thời gian từ lúc báo động đến (thang log)",
                      "Time since the alarm arrived (log scale)"),
    "footer": ("Số liệu đọc từ nhật ký của máy tiếp nhận (chỉ đọc). Thời gian theo giờ {tz}.",
               "Figures read from the receiver's journal (read-only). Times in {tz}."),
}
STEP_NAMES: dict[str, tuple[str, str]] = {
    "police_acknowledged": ("Đã nhận", "Received"), "on_scene": ("Đã đến nơi", "On scene"),
    "closed": ("Kết thúc", "Closed"),
}


class StationView:
    """What the template calls: words, times, durations in one language."""

    def __init__(self, report: StationReport, lang: Lang) -> None:
        self.r, self.lang, self.texts = report, lang, Texts(lang)
        self._i = 0 if lang == "vi" else 1

    def t(self, key: str, **fields: object) -> str:
        pair = _T.get(key)
        text = pair[self._i] if pair else key
        return text.format(**fields) if fields else text

    def step(self, key: str) -> str:
        return STEP_NAMES[key][self._i]

    def kind(self, alarm_type: str) -> str:
        return self.texts.pick(KINDS, alarm_type)

    def dur(self, seconds: float | None) -> str:
        return self.texts.duration(seconds)

    def when(self, ts: float | None) -> str:
        return self.r.month.fmt(ts)

    def after(self, alarm: StationAlarm, step: str) -> str:
        return self.texts.clock(alarm.after(step))

    def site_name(self, site: str) -> str:
        return next((s.name for s in self.r.sites if s.site == site), site)

    @property
    def month_label(self) -> str:
        return f"{self.r.month.month:02d}/{self.r.month.year}"

    @property
    def period(self) -> str:
        m = self.r.month
        return f"{m.fmt(m.start)[:5]}/{m.year} – {m.fmt(m.end - 1)[:5]}/{m.year}"

    def charts(self) -> dict[str, str]:
        from gateway.report import charts

        m = self.r.month
        series = []
        for site in self.r.sites:
            counts = [0] * m.days
            for a in self.r.real:
                if a.site == site.site:
                    counts[m.day_of(a.received) - 1] += 1
            series.append((site.name, counts))
        rows = [(self.step(s.step), s.values_s, s.median_s, s.p90_s) for s in self.r.steps]
        return {"per_day": charts.per_day(m.days, series, self.t("chart_alarms"),
                                          self.t("chart_day")),
                "response": charts.response_strips(rows, self.t("chart_seconds"), self.dur)}


def render_station_html(report: StationReport, lang: Lang) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["css_string"] = css_string
    css = (GATEWAY_TEMPLATES / "report.css").read_text(encoding="utf-8")
    view = StationView(report, lang)
    context: dict[str, Any] = {"v": view, "r": report, "t": view.t, "svg": view.charts(),
                               "css": css}
    return env.get_template("report.html.j2").render(**context)


def run_station_report(config: Any, month_text: str | None, html: Path | None,
                       pdf: Path | None, out_dir: Path | None, lang: Lang) -> int:
    """``alarm-receiver report``: which month and files, then read, render, write."""
    import sys
    import time

    from gateway.report.period import parse_month
    from gateway.report.render import require_extra, write_pdf, write_text
    from receiver.journal_reader import JOURNAL_FILE
    from receiver.report import build_station_report

    month = parse_month(month_text, config.receiver.timezone, time.time())
    stem = f"{config.receiver.id}-report-{month.label}"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        html, pdf = html or out_dir / f"{stem}.html", pdf or out_dir / f"{stem}.pdf"
    if html is None and pdf is None:
        html = Path(f"{stem}.html")
    require_extra(pdf=pdf is not None)
    report = build_station_report(config, config.storage_dir / JOURNAL_FILE, month, time.time())
    page = render_station_html(report, lang)
    for path, write in ((html, write_text), (pdf, write_pdf)):
        if path is not None:
            write(page, path)
            print(f"wrote {path}")
    never = sum(len(s.never_taken) for s in report.sites)
    print(f"{config.receiver.id} {month.label}: {len(report.real)} alarms from "
          f"{len(report.sites)} sites, {never} never received", file=sys.stderr)
    return 0
