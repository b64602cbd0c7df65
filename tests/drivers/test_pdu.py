"""The SMS PDU coder: published vectors, Vietnamese UCS2, concatenation, fuzzing."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.pdu import (
    Concat,
    PduError,
    Reassembler,
    decode_deliver,
    decode_submit,
    encode_deliver,
    encode_submit,
    gsm_septets,
    gsm_text,
    normalize_number,
    numeric_address,
    pack_septets,
    split_text,
    unpack_septets,
)

VN = timezone(timedelta(hours=7))
VIETNAMESE = (
    "Báo động khẩn cấp tại Khoa Cấp cứu, Bệnh viện Đa khoa Xanh Pôn, phòng tiếp đón số 3. "
    "Nhân viên y tế bị người nhà bệnh nhân hành hung lúc 23:41. Đề nghị công an phường "
    "đến ngay; trả lời OK 0427 để xác nhận đã nhận tin. Mã sự cố 0427, nguồn nút bấm ĐK-3."
)[:200]


def reassemble_submit(pdus: list[str]) -> str:
    joiner = Reassembler()
    results = [joiner.add(decode_submit(p), now=0.0) for p in pdus]
    whole = [r for r in results if r is not None]
    assert len(whole) == 1 and whole[0].complete
    return whole[0].text


# -- published vectors -----------------------------------------------------------------


def test_hellohello_septet_packing() -> None:
    septets = gsm_septets("hellohello")
    assert septets is not None
    assert pack_septets(septets).hex().upper() == "E8329BFD4697D9EC37"
    assert gsm_text(unpack_septets(bytes.fromhex("E8329BFD4697D9EC37"), 10)) == "hellohello"


def test_submit_vector_hellohello() -> None:
    [pdu] = encode_submit("+46708251358", "hellohello", validity=0xAA)
    assert pdu.hex == "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    assert pdu.tpdu_length == 23 == len(bytes.fromhex(pdu.hex)) - 1
    assert (pdu.seq, pdu.total) == (1, 1)


def test_deliver_vector_hellohello() -> None:
    sms = decode_deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert sms.kind == "deliver"
    assert sms.smsc == "+27381000015"
    assert sms.number == "27838890001"  # type 0xC8: national, no "+"
    assert sms.text == "hellohello"
    assert sms.sent_at == datetime(1999, 3, 29, 15, 16, 59, tzinfo=timezone(timedelta(hours=2)))


def test_deliver_vector_hello_world() -> None:
    sms = decode_deliver(
        "07911326040000F0040B911346610089F60000208062917314080CC8329BFD065DDF72363904"
    )
    assert (sms.smsc, sms.number, sms.text) == ("+31624000000", "+31641600986", "Hello World!")


def test_deliver_vector_alphanumeric_sender() -> None:
    sms = decode_deliver(
        "0791448720003023240DD0E474D81C0EBB010000111011315214000BE474D81C0EBB5DE3771B"
    )
    assert (sms.number, sms.text, sms.status_report) == ("diafaan", "diafaan.com", True)


def test_vietnamese_number_is_international() -> None:
    [pdu] = encode_submit("+84912345678", "A")
    assert pdu.hex.startswith("0011000B914819325476F8")
    [national] = encode_submit("113", "A")
    assert national.hex.startswith("001100038111F3")


# -- the GSM alphabet -------------------------------------------------------------------


def test_0x5f_is_section_sign() -> None:
    assert gsm_text([0x5F]) == "§"
    assert gsm_septets("§") == [0x5F]
    assert gsm_septets("`") is None  # not in GSM 03.38: such a text goes as UCS2


def test_extension_characters_cost_two_septets() -> None:
    assert gsm_septets("€[]") == [0x1B, 0x65, 0x1B, 0x3C, 0x1B, 0x3E]
    [pdu] = encode_submit("+84912345678", "Fee 5€ [x] ~{}|^\\")
    sms = decode_submit(pdu.hex)
    assert (sms.alphabet, sms.text) == ("gsm7", "Fee 5€ [x] ~{}|^\\")


def test_escape_sequence_is_never_split() -> None:
    assert split_text("€" * 80) == ("gsm7", ["€" * 80])
    alphabet, parts = split_text("a" * 152 + "€" + "b" * 10)
    assert alphabet == "gsm7" and parts == ["a" * 152, "€" + "b" * 10]
    pdus = [p.hex for p in encode_submit("+84912345678", "€" * 81)]
    assert len(pdus) == 2
    assert decode_submit(pdus[0]).text == "€" * 76
    assert reassemble_submit(pdus) == "€" * 81


def test_unknown_escape_shows_basic_character() -> None:
    assert gsm_text([0x1B, 0x41]) == "A"
    assert gsm_text([0x41, 0x1B]) == "A "


# -- UCS2 and concatenation -------------------------------------------------------------


def test_vietnamese_is_ucs2() -> None:
    [pdu] = encode_submit("+84912345678", "Việt")
    assert pdu.hex.endswith("0008A708" + "0056" + "0069" + "1EC7" + "0074")  # PID DCS VP UDL "Việt"
    assert decode_submit(pdu.hex).text == "Việt"


def test_single_and_concatenated_limits() -> None:
    assert len(encode_submit("+84912345678", "a" * 160)) == 1
    assert len(encode_submit("+84912345678", "a" * 161)) == 2
    assert len(encode_submit("+84912345678", "đ" * 70)) == 1
    assert [len(p) for p in split_text("đ" * 71)[1]] == [67, 4]


def test_concatenated_part_layout() -> None:
    pdus = encode_submit("+84912345678", "a" * 200, ref=0x2A)
    first = bytes.fromhex(pdus[0].hex)
    assert first[1] == 0x51  # SMS-SUBMIT, relative validity, UDHI
    sms = decode_submit(pdus[0].hex)
    assert sms.concat == Concat(0x2A, 2, 1)
    assert first[1 + 2 + 8 + 3] == 160  # UDL: 7 header septets + 153
    assert [p.seq for p in pdus] == [1, 2]


def test_surrogate_pair_is_never_split() -> None:
    text = "đ" * 66 + "😀" * 3
    alphabet, parts = split_text(text)
    assert alphabet == "ucs2" and parts == ["đ" * 66, "😀" * 3]
    pdus = [p.hex for p in encode_submit("+84912345678", text)]
    assert all("\ufffd" not in decode_submit(p).text for p in pdus)
    assert reassemble_submit(pdus) == text


def test_200_character_vietnamese_message() -> None:
    assert len(VIETNAMESE) == 200
    pdus = encode_submit("+84912345678", VIETNAMESE, ref=7)
    assert len(pdus) == 3
    assert all(decode_submit(p.hex).alphabet == "ucs2" for p in pdus)
    assert all(p.tpdu_length == len(bytes.fromhex(p.hex)) - 1 for p in pdus)
    assert reassemble_submit([p.hex for p in pdus]) == unicodedata.normalize("NFC", VIETNAMESE)


def test_decomposed_text_is_sent_composed() -> None:
    nfd = unicodedata.normalize("NFD", VIETNAMESE)
    assert len(nfd) > 250
    pdus = [p.hex for p in encode_submit("+84912345678", nfd)]
    assert len(pdus) == 3
    assert reassemble_submit(pdus) == unicodedata.normalize("NFC", VIETNAMESE)


def test_parts_out_of_order_and_duplicated() -> None:
    pdus = encode_deliver("+84912345678", VIETNAMESE, smsc="+84980200030",
                          sent_at=datetime(2026, 11, 23, 23, 41, tzinfo=VN), ref=9)  # fmt: skip
    joiner = Reassembler()
    assert joiner.add(decode_deliver(pdus[2]), 0.0, token=5) is None
    assert joiner.add(decode_deliver(pdus[0]), 0.0, token=3) is None
    assert joiner.add(decode_deliver(pdus[0]), 0.0, token=3) is None
    whole = joiner.add(decode_deliver(pdus[1]), 1.0, token=4)
    assert whole is not None and whole.text == VIETNAMESE and whole.tokens == (3, 4, 5)


def test_incomplete_message_expires() -> None:
    pdus = encode_deliver("+84912345678", "x" * 300, smsc="+84980200030",
                          sent_at=datetime(2026, 11, 23, tzinfo=VN))  # fmt: skip
    joiner = Reassembler(timeout_s=60)
    assert joiner.add(decode_deliver(pdus[0]), 0.0, token=1) is None
    assert joiner.expired(59.0) == []
    [partial] = joiner.expired(60.0)
    assert (partial.complete, partial.text, partial.tokens) == (False, "x" * 153, (1,))


# -- SMS-DELIVER round trips, other codings ----------------------------------------------


def test_deliver_round_trip_with_alphanumeric_sender_and_time() -> None:
    when = datetime(2026, 11, 23, 19, 42, 5, tzinfo=VN)
    [pdu] = encode_deliver("Viettel", "OK 0427", smsc="+84980200030", sent_at=when)
    sms = decode_deliver(pdu)
    assert (sms.number, sms.text, sms.sent_at, sms.smsc) == (
        "Viettel", "OK 0427", when, "+84980200030")  # fmt: skip


def test_eight_bit_and_16_bit_reference() -> None:
    sms = decode_submit("0011000B914819325476F80004A703414243")
    assert (sms.alphabet, sms.text) == ("8bit", "ABC")
    smsc, first, sender, pid_dcs, scts = (
        "07914889200030F0", "44", "0B914819325476F8", "0008", "62113290328000")  # fmt: skip
    udh = "06080412340201"  # IEI 0x08: 16-bit reference 0x1234, part 1 of 2
    sms = decode_deliver(smsc + first + sender + pid_dcs + scts + "09" + udh + "0056")
    assert sms.concat == Concat(0x1234, 2, 1) and sms.text == "V"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "zz",
        "0",
        "0011000B914819325476F80000A7",  # no TP-UDL
        "0011000B914819325476F80000A705E8",  # user data shorter than its length
        "0011000B914819325476F80000A701E8FF",  # trailing octets
        "0011000B914819325476F80000A7A1" + "00" * 141,  # 161 septets
        "0011000B914819325476F80020A70141",  # compressed
    ],
)
def test_malformed_submit_raises_pdu_error(bad: str) -> None:
    with pytest.raises(PduError):
        decode_submit(bad)


def test_wrong_direction_raises_pdu_error() -> None:
    [pdu] = encode_submit("+84912345678", "x")
    with pytest.raises(PduError):
        decode_deliver(pdu.hex)
    with pytest.raises(PduError):
        encode_submit("+84 912", "x")
    with pytest.raises(PduError):
        encode_submit("+84912345678", "x" * 153 * 256)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0912 345 678", "+84912345678"),
        ("0912-345-678", "+84912345678"),
        ("+84 912 345 678", "+84912345678"),
        ("0084912345678", "+84912345678"),
        ("(024) 3825.3531", "+842438253531"),
        ("113", "113"),
    ],
)
def test_normalize_number(raw: str, e164: str) -> None:
    assert normalize_number(raw) == e164


@pytest.mark.parametrize("raw", ["", "+", "abc", "0912x345", "+84" + "1" * 20])
def test_normalize_number_rejects(raw: str) -> None:
    with pytest.raises(PduError):
        normalize_number(raw)


# -- fuzzing -------------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=180))
def test_random_pdus_raise_only_pdu_error(data: bytes) -> None:
    for decode in (decode_deliver, decode_submit):
        try:
            decode(data.hex())
        except PduError:
            pass


VALID = [p.hex for p in encode_submit("+84912345678", VIETNAMESE)] + encode_deliver(
    "Viettel", "Giá 5€", smsc="+84980200030", sent_at=datetime(2026, 1, 1, tzinfo=VN)
)


@settings(max_examples=400)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255))))
def test_mutated_pdus_raise_only_pdu_error(pdu: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray.fromhex(pdu)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    for decode in (decode_deliver, decode_submit):
        try:
            decode(data.hex())
        except PduError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.integers(0, 255))
def test_any_text_round_trips(text: str, ref: int) -> None:
    pdus = encode_submit("+84912345678", text, ref=ref)
    assert all(p.tpdu_length == len(bytes.fromhex(p.hex)) - 1 <= 140 + 25 for p in pdus)
    assert reassemble_submit([p.hex for p in pdus]) == unicodedata.normalize("NFC", text)


# An SMS-DELIVER from the alphanumeric sender "0902222222" (TP-OA: 18 semi-octets, type
# 0xD0, the name's GSM septets packed), text "OK 0427".
ALPHANUMERIC_DELIVER = ("07914809000000F00412D0B01C4C2693C964321900006211329124508207"
                        "CF25084693DD00")


@pytest.mark.parametrize("toa", ["D0", "50"])
def test_an_alphanumeric_sender_that_reads_like_a_number_is_not_numeric(toa: str) -> None:
    sms = decode_deliver(ALPHANUMERIC_DELIVER.replace("0412D0", "0412" + toa))
    assert (sms.number, sms.text, sms.numeric) == ("0902222222", "OK 0427", False)


@pytest.mark.parametrize(("toa", "numeric"), [
    (0x91, True), (0x81, True), (0xA1, True), (0x80, True),  # international, unknown, national
    (0xD0, False), (0x50, False), (0xB1, False), (0xC1, False), (0xE1, False),  # alnum, ...
    (0x99, False), (0x89, False),  # private and other numbering plans
])
def test_numeric_address_types(toa: int, numeric: bool) -> None:
    assert numeric_address(toa) is numeric
