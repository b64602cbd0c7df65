"""The SMS a police phone shows: one part by default, every form, and check-config's view."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.schema import validate_config
from gateway.core.errors import ConfigError
from gateway.core.smstext import plain_text, shape
from gateway.escalation.messages import AlarmFacts
from gateway.escalation.sms_check import problems as sms_problems
from gateway.escalation.sms_check import render_table
from gateway.escalation.sms_texts import SmsTexts, TextKind
from gateway.preflight import load_site

RAISED = "2026-11-29T05:10:41.000Z"  # 12:10 in Hòa Bình
FACTS = AlarmFacts(type="panic", site="Bệnh viện Đa khoa Tỉnh Hòa Bình", site_short="BVĐK Hòa Bình",
                   ward="Khoa Cấp cứu", ward_short="Cấp cứu", room="Giường 11", code="3769",
                   raised_at=RAISED)
ISSUE_TEXT = "KHẨN CẤP BVĐK Hòa Bình, Cấp cứu, Giường 11, 12:10. Đáp: OK 3769"


def test_the_default_alarm_is_one_ucs2_part_with_diacritics():
    text = SmsTexts().alarm(FACTS)
    assert text == ISSUE_TEXT
    assert shape(text).alphabet == "ucs2" and shape(text).parts == 1 and len(text) == 63


def test_duress_drill_reminder_and_confirmation_fit_one_part():
    texts = SmsTexts()
    duress = texts.alarm(dataclasses.replace(FACTS, type="duress"))
    drill = texts.alarm(dataclasses.replace(FACTS, drill=True))
    reminder = texts.alarm(FACTS, reminder=2)
    confirmation = texts.render(TextKind.CONFIRMATION, FACTS)
    assert duress.startswith("CƯỠNG ÉP BVĐK Hòa Bình, ")
    assert drill == "[DIỄN TẬP] BVĐK Hòa Bình, Cấp cứu, Giường 11, 12:10. Đáp: OK 3769"
    assert reminder == "NHẮC LẠI 2: KHẨN CẤP Cấp cứu, Giường 11, 12:10. Đáp: OK 3769"
    assert confirmation == "Đã nhận OK 3769: Cấp cứu, Giường 11"
    assert all(shape(t).parts == 1 for t in (duress, drill, reminder, confirmation))


def test_a_room_is_written_as_configured():
    text = SmsTexts().alarm(dataclasses.replace(FACTS, room="Phòng điều dưỡng"))
    assert ", Phòng điều dưỡng, " in text and "phòng" not in text


def test_gsm7_sends_the_same_words_without_diacritics_in_160():
    texts = SmsTexts(charset="gsm7")
    text = texts.alarm(FACTS)
    assert text == "KHAN CAP BVDK Hoa Binh, Cap cuu, Giuong 11, 12:10. Dap: OK 3769"
    assert shape(text).alphabet == "gsm7"
    long = texts.alarm(dataclasses.replace(FACTS, site_short=FACTS.site,
                                           ward_short=FACTS.ward, room="Phòng hồi sức 1"))
    assert 70 < len(long) <= 160 and shape(long).parts == 1
    assert texts.alarm(dataclasses.replace(FACTS, drill=True)).startswith("[DIEN TAP] ")


def test_plain_text_never_leaves_a_character_outside_gsm():
    assert plain_text("Đường Lê Lợi – ấp 3 “x” 😀") == 'Duong Le Loi - ap 3 "x" ?'


def test_a_mass_alarm_names_every_room_with_one_code():
    members = (("Cấp cứu", "P.102"), ("Cấp cứu", "P.104"), ("Cấp cứu", "Giường 11"))
    text = SmsTexts().alarm(dataclasses.replace(FACTS, members=members))
    assert text == ("3 BÁO ĐỘNG BVĐK Hòa Bình. Cấp cứu: P.102, P.104, Giường 11. 12:10. "
                    "Đáp: OK 3769")
    again = SmsTexts().alarm(dataclasses.replace(FACTS, members=members), reminder=1)
    assert again.startswith("NHẮC LẠI 1: 3 BÁO ĐỘNG")
    confirmation = SmsTexts().render(TextKind.CONFIRMATION,
                                     dataclasses.replace(FACTS, members=members))
    assert confirmation == "Đã nhận OK 3769: 3 báo động, Cấp cứu: P.102, P.104, Giường 11"


def test_a_resend_gets_a_counter_only_where_it_fits():
    texts = SmsTexts()
    assert texts.resend(ISSUE_TEXT, 1) == ISSUE_TEXT
    assert texts.resend(ISSUE_TEXT, 2) == ISSUE_TEXT + " (2)"
    full = "x" * 68 + "ả"  # 69 UCS2 units: " (2)" would make it two parts
    assert texts.resend(full, 2) == full


def test_site_templates_replace_the_defaults_and_a_broken_one_falls_back():
    texts = SmsTexts(custom={TextKind.ALARM: "BD {ward_short} {room} {time} OK {code} #{ref}"})
    assert texts.alarm(dataclasses.replace(FACTS, ref="7F3A2C")) == (
        "BD Cấp cứu Giường 11 12:10 OK 3769 #7F3A2C")
    assert SmsTexts(custom={TextKind.ALARM: "{nope} {code}"}).alarm(FACTS) == ISSUE_TEXT


def test_explanations():
    texts = SmsTexts()
    facts = dataclasses.replace(FACTS, code="1234", open_codes=("3769", "0427"))
    assert texts.render(TextKind.NO_MATCH, facts) == (
        "Không có báo động mở mã 1234. Đang mở: 3769, 0427")
    assert "OK <mã 4 số>" in texts.render(TextKind.NOT_UNDERSTOOD, FACTS)
    assert SmsTexts(language="en").render(TextKind.CONFIRMATION, FACTS) == (
        "Received OK 3769: Cấp cứu, Giường 11")


# -- check-config --------------------------------------------------------------------------

SITE = textwrap.dedent("""
    [site]
    id = "bvdk"
    name = "Bệnh viện Đa khoa Tỉnh Hòa Bình"
    short_name = "BVĐK Hòa Bình"
    [[wards]]
    id = "cc"
    name = "Khoa Cấp cứu"
    short_name = "Cấp cứu"
    [[devices]]
    id = "g11"
    ward = "cc"
    room = "Giường 11"
    pin = 17
    [[devices]]
    id = "desk"
    ward = "cc"
    room = "{room}"
    pin = 18
    [modem]
    port = "/dev/null"
    [escalation.sms]
    numbers = ["0912000113"]
    {extra}
""")


def _write(tmp_path: Path, room: str = "Quầy tiếp đón", extra: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(room=room, extra=extra), encoding="utf-8")
    return path


def test_check_config_prints_every_text_with_its_parts(tmp_path, capsys):
    assert main(["check-config", "-c", str(_write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert f"g11              alarm        [1 SMS, 63/70 UCS2] {ISSUE_TEXT[:-19]}" in out
    for what in ("duress", "drill", "reminder", "confirmation", "mass"):
        assert f" {what} " in out


def test_check_config_refuses_an_alarm_text_over_max_parts(tmp_path, capsys):
    path = _write(tmp_path, room="Quầy đón tiếp bệnh nhân khoa Cấp cứu")
    assert main(["check-config", "-c", str(path)]) == 2
    out = capsys.readouterr().out
    assert "devices[1].room: SMS for desk need more than messages.max_parts = 1: alarm 2 SMS" in out
    assert len(out.strip().splitlines()) == 1


def test_max_parts_2_and_gsm7_let_a_long_room_through(tmp_path, capsys):
    long = "Quầy đón tiếp bệnh nhân khoa Cấp cứu"
    assert main(["check-config", "-c", str(_write(tmp_path, long, "[messages]\nmax_parts = 2"))]) == 0
    assert main(["check-config", "-c", str(_write(tmp_path, long,
                                                  '[messages]\ncharset = "gsm7"'))]) == 0
    assert "KHAN CAP BVDK Hoa Binh, Cap cuu, Quay don tiep" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "key"), [
    ('[messages.templates]\nconfirmation = "Đã nhận"', "messages.templates.confirmation"),
    ('[messages.templates]\nreminder = "{nope} {code}"', "messages.templates.reminder"),
    ('[messages.templates]\nbogus = "x"', "messages.templates.bogus"),
    ('[escalation.voice]\nnumbers = ["abc"]', "escalation.voice.numbers[0]"),
])
def test_bad_templates_and_numbers_are_refused_with_their_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as err:
        load_site(_write(tmp_path, extra=extra))
    assert any(k == key for k, _ in err.value.errors), err.value.errors


def test_without_sms_nothing_is_refused_for_length(tmp_path):
    import tomllib
    raw = tomllib.loads(_write(tmp_path, room="x" * 80).read_text(encoding="utf-8"))
    del raw["escalation"]
    config = validate_config(raw)
    assert sms_problems(config) == []


def test_the_example_site_sends_one_part_everywhere():
    from gateway.config.schema import load_config
    config = load_config(Path(__file__).resolve().parents[2] / "examples" / "site.toml")
    for r in render_table(config):
        if r.what != "mass":
            assert r.shape.parts == 1, r
