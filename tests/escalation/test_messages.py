"""Long texts (HTTP body), template checking and the matching of police replies."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.escalation.messages import (
    DEFAULT_TEMPLATES,
    AlarmFacts,
    Templates,
    check_template,
    fold_reply,
    local_time,
    parse_police_reply,
    render,
    rooms_text,
    sms_reference,
)

FACTS = AlarmFacts(
    type="panic", site="Bệnh viện Bạch Mai", ward="Khoa Cấp cứu", room="105", code="0427",
    raised_at="2026-11-23T19:42:05.123Z", device="btn-105", ref=sms_reference("esc-1"),
)
LOCAL = "02:42:05 24/11/2026"  # 19:42:05 UTC is 02:42:05 next day in Hà Nội (UTC+7)


def test_the_long_vietnamese_text_names_everything_the_police_need():
    text = Templates().render(FACTS)
    for part in ("Báo động khẩn cấp", "Bệnh viện Bạch Mai", "Khoa Cấp cứu", "105", LOCAL,
                 "0427", "Trả lời: OK 0427"):
        assert part in text
    assert "phòng" not in text and not text.startswith("[")


def test_a_room_is_named_as_written():
    facts = dataclasses.replace(FACTS, room="Phòng điều dưỡng")
    assert ", Phòng điều dưỡng, " in Templates().render(facts)
    assert "phòng Phòng" not in Templates().render(facts)


def test_the_english_text_names_everything_too():
    text = Templates().render(FACTS, "en")
    for part in ("Panic alarm", "Bệnh viện Bạch Mai", "Khoa Cấp cứu", "105", LOCAL,
                 "Reply: OK 0427"):
        assert part in text


@pytest.mark.parametrize(("alarm_type", "vi", "en"), [
    ("panic", "Báo động khẩn cấp", "Panic alarm"),
    ("duress", "Báo động cưỡng ép (bị khống chế)", "Duress alarm"),
    ("intrusion", "Báo động đột nhập", "Intrusion alarm"),
    ("door", "Báo động cửa mở", "Door alarm"),
    ("test", "Kiểm tra định kỳ", "Periodic test"),
    ("flood", "Báo động (flood)", "Alarm (flood)"),
])
def test_alarm_type_names(alarm_type, vi, en):
    facts = dataclasses.replace(FACTS, type=alarm_type)
    assert vi in Templates().render(facts) and en in Templates().render(facts, "en")


def test_a_drill_is_prefixed_in_both_languages():
    drill = dataclasses.replace(FACTS, drill=True)
    message, message_en = Templates().http_messages(drill)
    assert message.startswith("[DIỄN TẬP] ") and message_en.startswith("[DRILL] ")


def test_the_local_time_is_hanoi_time():
    assert local_time("2026-11-23T19:42:05.123Z") == LOCAL
    assert local_time("2026-06-30T17:00:00.000Z", "Asia/Ho_Chi_Minh") == "00:00:00 01/07/2026"
    assert local_time("2026-06-30T17:00:00.000Z", "Nowhere/Atlantis") == "00:00:00 01/07/2026"


def test_short_and_long_fields():
    facts = dataclasses.replace(FACTS, site_short="BV Bạch Mai", ward_short="Cấp cứu")
    assert render("{site_short}|{ward_short}|{time}|{date}|{type}", facts) == (
        "BV Bạch Mai|Cấp cứu|02:42|24/11|KHẨN CẤP")
    assert render("{site_short}|{ward_short}", FACTS) == "Bệnh viện Bạch Mai|Khoa Cấp cứu"


def test_mass_rooms_are_named_by_ward_each_once():
    members = (("Cấp cứu", "P.102"), ("Cấp cứu", "P.104"), ("Khám bệnh", "P.3"),
               ("Cấp cứu", "P.102"))
    assert rooms_text(members) == "Cấp cứu: P.102, P.104; Khám bệnh: P.3"


def test_references_differ_per_escalation_and_resend():
    refs = {sms_reference("esc-1"), sms_reference("esc-2"), sms_reference("esc-1", attempt=2)}
    assert len(refs) == 3
    assert re.fullmatch(r"[A-Z2-7]{6}", sms_reference("esc-1"))


@pytest.mark.parametrize(("template", "needle"), [
    ("{type} {site} {floor} {code}", "unknown field {floor}"),
    ("{site.__class__} {code}", "unknown field {site.__class__}"),
    ("{ward[0]} {code}", "unknown field {ward[0]}"),
    ("{0} {code}", "positional field"),
    ("{} {code}", "positional field"),
    ("{code", "bad template syntax"),
    ("code}", "bad template syntax"),
    ("{room:{code}} {code}", "nested field"),
    ("{code!r}", "conversion !r"),
    ("{type} {site}", "must contain {code}"),
    ("{code:d}", "cannot be filled in"),
])
def test_check_template_reports_problems(template, needle):
    problems = check_template(template)
    assert any(needle in p for p in problems), problems


def test_the_default_templates_pass_the_check():
    assert check_template(DEFAULT_TEMPLATES["vi"]) == []
    assert check_template(DEFAULT_TEMPLATES["en"]) == []


@given(st.text(max_size=200))
def test_check_template_never_raises_and_a_clean_template_renders(template):
    problems = check_template(template)
    assert all(isinstance(p, str) and p for p in problems)
    if not problems:
        assert "0427" in render(template, FACTS)


# -- police replies ----------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "code"), [
    ("OK 0427", "0427"), ("ok 0427", "0427"), ("ÔK 0427", "0427"), ("Ơk 0427", "0427"),
    ("ok0427", "0427"), ("  Ok, 0427.", "0427"), ("OK 0427 đã nhận, đang tới", "0427"),
    ("ＯＫ　０４２７", "0427"), (unicodedata.normalize("NFD", "ÔK 0427"), "0427"),
    ("OK: 0427", "0427"), ("okay 0427", None), ("not ok 0427", None), ("KO 0427", None),
    ("OK 04271", None), ("OK 427", None), ("OK", None), ("", None), ("0427", None),
    ("OK ٠٤٢٧", None),
])
def test_parse_police_reply(reply, code):
    assert parse_police_reply(reply) == code


def test_fold_reply():
    assert fold_reply("  ÔK   0427 Đã NHẬN ") == "ok 0427 da nhan"
    assert fold_reply("Đường") == "duong"


O_FORMS = st.sampled_from(["o", "O", "ô", "Ô", "ó", "Ò", "ơ", "Ờ", "ọ", "Ộ", "ｏ", "Ｏ"])
K_FORMS = st.sampled_from(["k", "K", "ｋ", "Ｋ"])
SEPARATORS = st.sampled_from(["", " ", "  ", ": ", ", ", "-", "\t", "\u3000", " # "])


@given(o=O_FORMS, k=K_FORMS, sep=SEPARATORS, code=st.from_regex(r"[0-9]{4}", fullmatch=True),
       tail=st.text(max_size=40), form=st.sampled_from(["NFC", "NFD"]))
def test_any_spelling_of_ok_with_a_code_is_understood(o, k, sep, code, tail, form):
    reply = unicodedata.normalize(form, f"{o}{k}{sep}{code} {tail}")
    assert parse_police_reply(reply) == code


@given(st.text(max_size=3000))
def test_hostile_replies_never_raise(text):
    code = parse_police_reply(text)
    assert code is None or re.fullmatch(r"[0-9]{4}", code)
    folded = fold_reply(text)
    assert fold_reply(folded) == folded
    assert len(folded) <= 4 * 1000  # bounded however long the input
