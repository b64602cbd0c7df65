"""The AT response parser: fragmentation, URCs while a command is pending, prompt, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.at import (
    AtError,
    AtEvent,
    AtParser,
    Final,
    Prompt,
    Response,
    Urc,
    parse_cmgl,
    parse_cmgr,
    parse_cmgs,
    parse_cmti,
    parse_cpin,
    parse_csq,
    parse_final,
    parse_registration,
    rssi_to_dbm,
)

PDU = "07914889200030F0040B914819325476F80000622132914470000A4F251D14769BD3A0B0"


def feed_bytewise(parser: AtParser, data: bytes) -> list[AtEvent]:
    events: list[AtEvent] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    return events


def test_answer_split_into_single_bytes() -> None:
    p = AtParser()
    p.begin("AT+CSQ")
    events = feed_bytewise(p, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert events == [Response("AT+CSQ", ("+CSQ: 20,99",), Final("OK"))]
    assert p.pending is None


def test_echo_is_dropped() -> None:
    p = AtParser()
    p.begin("ATE0")
    assert p.feed(b"ATE0\r\r\nOK\r\n") == [Response("ATE0", (), Final("OK"))]


def test_cmti_during_pending_command_is_not_lost() -> None:
    p = AtParser()
    p.begin("AT+CSQ")
    events = p.feed(b'\r\n+CSQ: 17,99\r\n\r\n+CMTI: "SM",3\r\n\r\nOK\r\n')
    assert events == [
        Urc("+CMTI", '"SM",3', '+CMTI: "SM",3'),
        Response("AT+CSQ", ("+CSQ: 17,99",), Final("OK")),
    ]
    assert parse_cmti(events[0]) == ("SM", 3)  # type: ignore[arg-type]


def test_urcs_inside_a_cmgr_answer_and_its_pdu() -> None:
    p = AtParser()
    p.begin("AT+CMGR=3")
    data = f'\r\n+CMGR: 0,,24\r\n+CMTI: "SM",4\r\n{PDU}\r\nRING\r\n\r\nOK\r\n'.encode()
    events = feed_bytewise(p, data)
    assert [type(e) for e in events] == [Urc, Urc, Response]
    assert [e.name for e in events[:2]] == ["+CMTI", "RING"]  # type: ignore[union-attr]
    response = events[2]
    assert isinstance(response, Response)
    assert parse_cmgr(response.lines) == (0, PDU)


def test_cmt_keeps_its_pdu_line_even_during_a_command() -> None:
    p = AtParser()
    p.begin("AT+CREG?")
    events = p.feed(f"\r\n+CMT: ,24\r\n{PDU}\r\n+CREG: 0,1\r\n\r\nOK\r\n".encode())
    assert events == [
        Urc("+CMT", ",24", "+CMT: ,24", PDU),
        Response("AT+CREG?", ("+CREG: 0,1",), Final("OK")),
    ]


def test_prompt_then_message_reference() -> None:
    p = AtParser()
    p.begin("AT+CMGS=23")
    assert p.feed(b"\r\n") == []
    assert p.feed(b">") == [Prompt("AT+CMGS=23")]
    assert p.feed(b" ") == []
    events = p.feed(b"\r\n+CMGS: 42\r\n\r\nOK\r\n")
    assert events == [Response("AT+CMGS=23", ("+CMGS: 42",), Final("OK"))]
    assert parse_cmgs("+CMGS: 42") == 42


def test_no_prompt_for_other_commands() -> None:
    p = AtParser()
    p.begin("AT+CSQ")
    assert p.feed(b"> ") == []


@pytest.mark.parametrize(
    ("line", "final"),
    [
        ("OK", Final("OK")),
        ("ERROR", Final("ERROR")),
        ("+CMS ERROR: 500", Final("+CMS ERROR", 500, "unknown error")),
        ("+CMS ERROR: 330", Final("+CMS ERROR", 330, "SMSC address unknown")),
        ("+CMS ERROR: Unknown error", Final("+CMS ERROR", 500, "Unknown error")),
        ("+CME ERROR: SIM not inserted", Final("+CME ERROR", 10, "SIM not inserted")),
        ("+CME ERROR: 9999", Final("+CME ERROR", 9999, "")),
        ("+CME ERROR: vendor text", Final("+CME ERROR", None, "vendor text")),
        ("+CMGS: 3", None),
    ],
)
def test_final_results(line: str, final: Final | None) -> None:
    assert parse_final(line) == final


def test_error_names_code_and_meaning() -> None:
    error = Final("+CMS ERROR", 500, "unknown error").error("AT+CMGS=23")
    assert (error.kind, error.code) == ("cms", 500)
    assert "500" in str(error) and "unknown error" in str(error)


def test_unsolicited_lines_without_a_command() -> None:
    p = AtParser()
    events = p.feed(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nOK\r\n+CEREG: 1\r\n")
    assert [(e.name, e.args) for e in events if isinstance(e, Urc)] == [
        ("RDY", ""), ("+CPIN", "READY"), ("SMS DONE", ""), ("+CEREG", "1")]  # fmt: skip
    assert len(events) == 4  # the stray OK is dropped


def test_abandoned_command_drops_its_late_answer() -> None:
    p = AtParser()
    p.begin("AT+CSQ")
    p.abandon()
    assert p.feed(b"\r\nOK\r\n") == []
    p.begin("AT")
    with pytest.raises(AtError):
        p.begin("AT")


def test_noise_without_line_end_is_bounded() -> None:
    p = AtParser()
    p.feed(b"x" * 10_000)
    p.begin("AT")
    assert p.feed(b"\r\nOK\r\n") == [Response("AT", (), Final("OK"))]


# -- answer parsers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rssi", "dbm"), [(0, -113), (1, -111), (2, -109), (15, -83), (30, -53), (31, -51), (99, None)]
)
def test_rssi_to_dbm(rssi: int, dbm: int | None) -> None:
    assert rssi_to_dbm(rssi) == dbm
    assert parse_csq(f"+CSQ: {rssi},99").dbm == dbm


@pytest.mark.parametrize(
    ("line", "unsolicited", "stat", "registered", "roaming"),
    [
        ("+CREG: 0,1", False, 1, True, False),
        ("+CREG: 0,5", False, 5, True, True),
        ("+CEREG: 0,6", False, 6, True, False),
        ("+CEREG: 0,7", False, 7, True, True),
        ("+CEREG: 2,2", False, 2, False, False),
        ("+CREG: 0,0", False, 0, False, False),
        ("+CREG: 1,3", False, 3, False, False),
        ("+CEREG: 0,4", False, 4, False, False),
        ("+CEREG: 5", True, 5, True, True),
        ('+CEREG: 1,"1A2B","01C2D3E4",7', True, 1, True, False),
    ],
)
def test_registration(
    line: str, unsolicited: bool, stat: int, registered: bool, roaming: bool
) -> None:
    reg = parse_registration(line, unsolicited=unsolicited)
    assert (reg.stat, reg.registered, reg.roaming) == (stat, registered, roaming)


def test_registration_with_location() -> None:
    reg = parse_registration('+CEREG: 2,1,"1A2B","01C2D3E4",7')
    assert (reg.lac, reg.ci, reg.act) == ("1A2B", "01C2D3E4", 7)


def test_cpin_and_cmgl() -> None:
    assert parse_cpin("+CPIN: READY") == "READY"
    assert parse_cpin("+CPIN: SIM PIN") == "SIM PIN"
    lines = ["+CMGL: 0,1,,24", PDU, "+CMGL: 4,0,,24", PDU]
    assert parse_cmgl(lines) == [(0, 1, PDU), (4, 0, PDU)]


@pytest.mark.parametrize(
    "call",
    [
        lambda: parse_csq("+CSQ: x,99"),
        lambda: parse_csq("+CREG: 0,1"),
        lambda: parse_csq("+CSQ: 20"),
        lambda: parse_registration("+CSQ: 1,2"),
        lambda: parse_registration("+CREG: 0"),
        lambda: parse_cpin("+CPIN: "),
        lambda: parse_cmgs("+CMGS: "),
        lambda: parse_cmgr(["+CMGR: 0,,24"]),
        lambda: parse_cmti(Urc("+CMTI", '"SM"', '+CMTI: "SM"')),
    ],
)
def test_malformed_answers_raise_at_error(call: object) -> None:
    with pytest.raises(AtError):
        call()  # type: ignore[operator]


# -- fuzzing ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    st.lists(st.binary(max_size=40), max_size=30),
    st.lists(st.sampled_from(["AT", "AT+CSQ", "AT+CMGS=23", "AT+CMGR=1", "ATE0"]), max_size=5),
)
def test_any_bytes_never_raise(chunks: list[bytes], commands: list[str]) -> None:
    p = AtParser()
    for i, chunk in enumerate(chunks):
        if p.pending is None and commands and i % 3 == 0:
            p.begin(commands.pop())
        for event in p.feed(chunk):
            assert isinstance(event, Response | Prompt | Urc)


URCS = ['+CMTI: "SM",1', "RING", "+CEREG: 1", "+CREG: 5", '+CDSI: "SM",2', "NO CARRIER"]


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(URCS), max_size=4),
    st.integers(0, 3),
    st.lists(st.integers(1, 8), min_size=1, max_size=20),
)
def test_urcs_anywhere_in_an_answer_are_all_delivered(
    urcs: list[str], position: int, cuts: list[int]
) -> None:
    answer = ["+CSQ: 21,99"]
    lines = answer[:position] + urcs + answer[position:]
    data = "".join(f"\r\n{ln}\r\n" for ln in lines).encode() + b"\r\nOK\r\n"
    p = AtParser()
    p.begin("AT+CSQ")
    events: list[AtEvent] = []
    i = 0
    for cut in cuts * (len(data) // sum(cuts) + 1):
        events += p.feed(data[i : i + cut])
        i += cut
    assert [e.line for e in events if isinstance(e, Urc)] == urcs
    assert [e for e in events if isinstance(e, Response)] == [
        Response("AT+CSQ", ("+CSQ: 21,99",), Final("OK"))
    ]
