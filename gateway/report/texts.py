"""The report's words in Vietnamese (the default) and English, and how it writes numbers,
durations and times. One table, so a translation is reviewed in one place."""

from __future__ import annotations

from typing import Literal

Lang = Literal["vi", "en"]

_T: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo an ninh tháng {month}", "Security report, {month}"),
    "subtitle": ("Hệ thống nút báo động khẩn cấp — giao ban định kỳ với Công an",
                 "Panic alarm system — monthly review with the police"),
    "period": ("Kỳ báo cáo", "Period"),
    "generated": ("Lập lúc", "Generated"),
    "site": ("Đơn vị", "Site"),
    "page": ("Trang", "Page"),
    "of": ("/", "of"),
    "coverage_gap": ("Nhật ký chỉ còn dữ liệu từ {first} (thời gian lưu trữ): số liệu đầu tháng "
                     "bị thiếu.", "The journal holds events from {first} only (retention): "
                     "the start of the month is missing."),
    # key figures
    "kf_alarms": ("Báo động thật", "Real alarms"),
    "kf_drills": ("Diễn tập", "Drills"),
    "kf_taken": ("Bảo vệ tiếp nhận (trung vị)", "Taken by the desk (median)"),
    "kf_police": ("Công an xác nhận (trung vị)", "Police acknowledged (median)"),
    "kf_unacked": ("Công an chưa xác nhận", "Never acknowledged by police"),
    "kf_devices": ("Thiết bị cần kiểm tra", "Devices to check"),
    "kf_of_target": ("{n}/{m} khoa đạt mục tiêu", "{n}/{m} wards on target"),
    "kf_breakdown": ("{panic} khẩn cấp · {duress} cưỡng ép · {contact} cửa/cảm biến",
                     "{panic} panic · {duress} duress · {contact} door/sensor"),
    "kf_sent": ("{n} báo động đã báo Công an", "{n} alarms sent to the police"),
    # the meeting's points
    "points": ("Nội dung cần trao đổi", "Points for the meeting"),
    "p_none": ("Không có vấn đề tồn đọng trong tháng.", "Nothing outstanding this month."),
    "p_unacked": ("{n} báo động đã gửi Công an nhưng không được xác nhận: {list}",
                  "{n} alarm(s) sent to the police were never acknowledged: {list}"),
    "p_no_note": ("{n} báo động kết thúc mà không ghi lại diễn biến: {list}",
                  "{n} alarm(s) resolved without a note on what happened: {list}"),
    "p_unresolved": ("{n} báo động chưa được kết thúc: {list}",
                     "{n} alarm(s) still not resolved: {list}"),
    "p_drill_behind": ("{ward}: {n}/{target} buổi diễn tập trong tháng",
                       "{ward}: {n} of {target} drills this month"),
    "p_walk_test": ("{n} nút chưa được bấm thử lần nào trong tháng (cần kiểm tra đi vòng): {list}",
                    "{n} button(s) never pressed or tested this month (walk test due): {list}"),
    "p_offline": ("{device} ({room}) mất kết nối {dur}{still}",
                  "{device} ({room}) offline for {dur}{still}"),
    "p_still": (", vẫn chưa khôi phục", ", still offline"),
    "p_battery": ("Pin yếu: {list}", "Low battery: {list}"),
    "p_tamper": ("Thiết bị bị tháo/mở vỏ: {list}", "Tamper: {list}"),
    "p_outage": ("Mất {what} {n} lần, tổng {dur}", "{what} outages: {n}, {dur} in all"),
    "p_tests": ("Báo cáo kiểm tra định kỳ: {n}/{due} (khoảng trống dài nhất {gap})",
                "Periodic tests: {n} of {due} (longest gap {gap})"),
    "p_worst_taken": ("Chậm tiếp nhận nhất: {code} ({ward}, {room}) sau {dur}",
                      "Slowest to be taken: {code} ({ward}, {room}) after {dur}"),
    # sections
    "s_alarms": ("1. Báo động trong tháng", "1. Alarms this month"),
    "s_by_ward": ("Theo khoa", "By ward"),
    "s_by_device": ("Theo thiết bị", "By device"),
    "s_per_day": ("Báo động thật theo ngày và theo khoa", "Real alarms per day, by ward"),
    "s_response": ("2. Thời gian phản ứng", "2. Response times"),
    "s_response_note": ("Tính từ lúc báo động phát ra; chỉ báo động thật. Phân vị 90: 9/10 "
                        "báo động nhanh hơn hoặc bằng.", "From the moment the alarm was raised; "
                        "real alarms only. p90: 9 in 10 alarms were this fast or faster."),
    "s_worst": ("Các trường hợp chậm nhất", "Worst cases"),
    "s_distribution": ("Phân bố thời gian phản ứng", "Response-time distribution"),
    "s_police": ("3. Phối hợp với Công an", "3. Working with the police"),
    "s_unacked": ("Báo động Công an chưa xác nhận", "Alarms the police never acknowledged"),
    "s_no_note": ("Kết thúc không ghi chú", "Resolved without a note"),
    "s_channels": ("Kênh báo Công an", "Escalation channels"),
    "s_calls": ("Cuộc gọi", "Voice calls"),
    "s_devices": ("4. Thiết bị", "4. Devices"),
    "s_drills": ("5. Diễn tập", "5. Drills"),
    "s_drill_calendar": ("Lịch diễn tập theo khoa", "Drill calendar by ward"),
    "s_gateway": ("6. Bộ trung tâm (gateway)", "6. The gateway"),
    "s_register": ("Phụ lục: danh sách báo động", "Appendix: every alarm"),
    # columns
    "c_ward": ("Khoa", "Ward"),
    "c_device": ("Thiết bị", "Device"),
    "c_room": ("Vị trí", "Location"),
    "c_kind": ("Loại", "Kind"),
    "c_panic": ("Khẩn cấp", "Panic"),
    "c_duress": ("Cưỡng ép", "Duress"),
    "c_contact": ("Cửa/cảm biến", "Door/sensor"),
    "c_mass": ("Trong báo động hàng loạt", "In a mass alarm"),
    "c_drills": ("Diễn tập", "Drills"),
    "c_total": ("Tổng", "Total"),
    "c_step": ("Bước", "Step"),
    "c_count": ("Số báo động", "Alarms"),
    "c_median": ("Trung vị", "Median"),
    "c_p90": ("Phân vị 90", "p90"),
    "c_worst": ("Chậm nhất", "Worst"),
    "c_code": ("Mã", "Code"),
    "c_raised": ("Phát lúc", "Raised"),
    "c_after": ("Sau", "After"),
    "c_by": ("Người xử lý", "By"),
    "c_note": ("Ghi chú", "Note"),
    "c_channel": ("Kênh", "Channel"),
    "c_target": ("Nơi nhận", "Target"),
    "c_attempts": ("Lần gửi", "Attempts"),
    "c_delivered": ("Thành công", "Delivered"),
    "c_retried": ("Lỗi, gửi lại", "Failed, retried"),
    "c_failed": ("Thất bại hẳn", "Failed for good"),
    "c_parts": ("Số tin (phần)", "SMS parts"),
    "c_made": ("Đã gọi", "Made"),
    "c_answered": ("Nghe máy", "Answered"),
    "c_outcomes": ("Kết quả", "Outcomes"),
    "c_presses": ("Lần bấm", "Presses"),
    "c_alarms": ("Báo động", "Alarms"),
    "c_offline": ("Mất kết nối", "Offline"),
    "c_battery": ("Pin yếu", "Low battery"),
    "c_tamper": ("Tháo vỏ", "Tamper"),
    "c_walk": ("Bấm thử", "Walk test"),
    "c_target_n": ("Mục tiêu", "Target"),
    "c_done": ("Đã diễn tập", "Held"),
    "c_days": ("Ngày", "Days"),
    "c_police_ok": ("Công an xác nhận", "Police acknowledged"),
    "c_status": ("Đánh giá", "Status"),
    "c_what": ("Sự cố", "Trouble"),
    "c_from": ("Từ", "From"),
    "c_to": ("Đến", "To"),
    "c_duration": ("Thời lượng", "Duration"),
    "c_taken": ("Tiếp nhận", "Taken"),
    "c_police_sent": ("Đã báo CA", "Police notified"),
    "c_police_ack": ("CA xác nhận", "Police ack"),
    "c_resolved": ("Kết thúc", "Resolved"),
    "c_type": ("Loại", "Type"),
    # values
    "v_due": ("Cần bấm thử", "Due"),
    "v_ok": ("Đạt", "On target"),
    "v_behind": ("Chưa đạt", "Behind"),
    "v_ongoing": ("đang tiếp diễn", "ongoing"),
    "v_none": ("Không có", "None"),
    "v_unknown": ("không rõ", "not recorded"),
    "v_drill": ("diễn tập", "drill"),
    "v_mass": ("hàng loạt", "mass"),
    "parts_unknown": ("Phiên bản gateway này chưa ghi số phần của mỗi tin SMS.",
                      "This gateway version does not journal SMS parts."),
    "sms_cost": ("{sms} tin SMS gửi đi, {parts} phần, chi phí ước tính {cost}",
                 "{sms} SMS sent, {parts} parts, estimated cost {cost}"),
    "sms_sent": ("{sms} tin SMS gửi đi", "{sms} SMS sent"),
    "no_calls": ("Không có cuộc gọi nào trong tháng.", "No voice calls this month."),
    "g_gap": ("khoảng trống dài nhất {gap}", "longest gap {gap}"),
    "devices_note": ("Lần bấm: thật (+ diễn tập). * đang mất kết nối khi hết tháng. "
                     "Cần bấm thử: không được bấm hay thử lần nào trong tháng.",
                     "Presses: real (+ drills). * still offline at the end of the month. "
                     "Walk test due: not pressed or tested once this month."),
    "register_note": ("Mỗi báo động (cả diễn tập) theo thứ tự thời gian. Các cột thời gian tính "
                      "từ lúc báo động phát ra, dạng phút:giây (giờ:phút:giây nếu quá 1 giờ).",
                      "Every alarm (drills included) in order. Time columns count from the "
                      "moment the alarm was raised, as min:s (h:min:s past an hour)."),
    "g_restarts": ("Khởi động lại", "Restarts"),
    "g_tests": ("Kiểm tra định kỳ", "Periodic tests"),
    "g_tests_off": ("không bật", "not enabled"),
    "g_events": ("Sự kiện ghi nhật ký", "Events journaled"),
    "g_rejected": ("Dữ liệu không hợp lệ bị từ chối", "Rejected input"),
    "g_malformed": ("Dòng nhật ký hỏng", "Damaged journal rows"),
    "g_malformed_note": ("không đọc được, không tính vào số liệu", "unreadable, left out of the figures"),
    "p_malformed": ("{n} dòng nhật ký hỏng không đọc được và không được tính: kiểm tra thẻ nhớ của bộ trung tâm",
                    "{n} damaged journal row(s) could not be read and are left out: check the gateway's storage"),
    "g_trouble": ("Thời gian sự cố", "Trouble periods"),
    "g_no_trouble": ("Không có sự cố trong tháng.", "No trouble this month."),
    "chart_alarms": ("Số báo động", "Alarms"),
    "chart_day": ("Ngày trong tháng", "Day of the month"),
    "chart_seconds": ("Thời gian từ lúc báo động (thang log)", "Time since the alarm (log scale)"),
    "chart_drill_ok": ("Công an đã xác nhận", "Police acknowledged"),
    "chart_drill_noack": ("Công an chưa xác nhận", "Not acknowledged"),
    "footer": ("Số liệu đọc từ nhật ký của bộ trung tâm (chỉ đọc). Thời gian theo giờ {tz}.",
               "Figures read from the gateway's journal (read-only). Times in {tz}."),
}

STEPS: dict[str, tuple[str, str]] = {
    "taken": ("Bảo vệ tiếp nhận", "Taken by the desk"),
    "delivered": ("Tin đầu tiên đến Công an", "First delivery to the police"),
    "police_ack": ("Công an xác nhận", "Police acknowledged"),
    "resolved": ("Kết thúc sự việc", "Resolved"),
}
KINDS: dict[str, tuple[str, str]] = {
    "panic": ("Khẩn cấp", "Panic"), "duress": ("Cưỡng ép", "Duress"),
    "contact": ("Cửa/cảm biến", "Door/sensor"),
    "panic_button": ("Nút khẩn cấp", "Panic button"),
    "duress_button": ("Nút cưỡng ép", "Duress button"),
    "door_contact": ("Công tắc cửa", "Door contact"), "sensor": ("Cảm biến", "Sensor"),
    "bed_call": ("Nút đầu giường", "Bed call"), "?": ("?", "?"),
}
TROUBLES: dict[str, tuple[str, str]] = {
    "broker": ("kết nối MQTT (broker)", "MQTT broker"),
    "hotline": ("đường dây nóng Công an (HTTP)", "police hotline (HTTP)"),
    "modem": ("modem SMS", "SMS modem"), "serial": ("đường bus nút bấm", "serial bus"),
    "disk": ("dung lượng thẻ nhớ", "disk space"), "backlog": ("hàng đợi gửi", "delivery backlog"),
    "other": ("khác", "other"),
}
CHANNELS: dict[str, tuple[str, str]] = {"http": ("HTTP", "HTTP"), "sms": ("SMS", "SMS"),
                                        "dc09": ("SIA DC-09", "SIA DC-09")}


class Texts:
    """``t("key", **fields)`` in one language; unknown keys show as themselves."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self._i = 0 if lang == "vi" else 1

    def __call__(self, key: str, **fields: object) -> str:
        pair = _T.get(key)
        text = pair[self._i] if pair else key
        return text.format(**fields) if fields else text

    def pick(self, table: dict[str, tuple[str, str]], key: str) -> str:
        pair = table.get(key)
        return pair[self._i] if pair else key

    def duration(self, seconds: float | None) -> str:
        """``45 giây``, ``2 phút 5 giây``, ``25 phút``, ``3 giờ 10 phút``, ``2 ngày 4 giờ``."""
        if seconds is None:
            return "—"
        s = round(seconds)
        u = (("giây", "phút", "giờ", "ngày") if self.lang == "vi" else ("s", "min", "h", "d"))
        if s < 60:
            return f"{s} {u[0]}"
        if s < 600:
            return f"{s // 60} {u[1]} {s % 60} {u[0]}" if s % 60 else f"{s // 60} {u[1]}"
        if s < 3600:
            return f"{round(s / 60)} {u[1]}"
        if s < 86400:
            h, m = divmod(round(s / 60), 60)
            return f"{h} {u[2]} {m} {u[1]}" if m else f"{h} {u[2]}"
        d, h = divmod(round(s / 3600), 24)
        return f"{d} {u[3]} {h} {u[2]}" if h else f"{d} {u[3]}"

    @staticmethod
    def clock(seconds: float | None) -> str:
        """``0:45``, ``12:05``, ``1:02:30``: compact, for dense tables."""
        if seconds is None:
            return "—"
        s = round(seconds)
        h, rest = divmod(s, 3600)
        return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"

    def number(self, value: float) -> str:
        """Thousands grouped as each language does: 12.500 (vi), 12,500 (en)."""
        text = f"{value:,.0f}"
        return text.replace(",", ".") if self.lang == "vi" else text
