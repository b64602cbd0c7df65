"""The DC-09 codec (sans-I/O) and the durable sequence numbers.

Messages are checked by pysiaalarm's parser, not by ours: we only decode answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysiaalarm import SIAAccount
from pysiaalarm.data.sia_codes import SIA_CODES
from pysiaalarm.event import SIAEvent as ParsedEvent

from gateway.core.sia import KNOWN_CODES
from gateway.escalation.dc09.codec import (
    AnswerKind,
    Dc09Error,
    Identity,
    SiaEvent,
    crc16,
    decode_answer,
    encode,
    fold,
)
from gateway.escalation.dc09.sequence import Sequences
from gateway.journal.store import Journal

NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z
KEY = b"0123456789ABCDEF"


def parse(frame: bytes, key: bytes | None = None) -> ParsedEvent:
    """pysiaalarm's reading of one frame (its time window off: NOW is fixed)."""
    account = SIAAccount("1A2B", key.decode() if key else None, allowed_timeband=None)
    return ParsedEvent.from_line(frame.decode("ascii").strip(), {"1A2B": account})


def test_crc_is_crc16_arc_as_dc09_specifies() -> None:
    assert crc16(b"123456789") == 0xBB3D  # the CRC-16/ARC check value
    body = b'"ADM-CID"0247R4F39L4F39#4F39[#4F39|3401 01 057]'
    assert crc16(body) == 0x5715  # a real panel's frame (pysiaalarm's test cases)


def test_frame_layout_length_and_time_stamp_are_exact() -> None:
    ident = Identity(account="1A2B", line="2", receiver="1F")
    frame = encode(ident, 9, SiaEvent(code="PA", zone=5, area=1, text="P.105"), now=NOW)
    body = b'"SIA-DCS"0009R1FL2#1A2B[#1A2B|Nri1/PA005|AP.105]_11:06:40,11-18-2026'
    assert frame == b"\n%04X%04X%s\r" % (crc16(body), len(body), body)
    event = parse(frame)
    assert (event.valid_message, event.code, event.ri, event.message) == (
        True, "PA", "1", "005|AP.105")
    assert event.timestamp.timestamp() == NOW


@pytest.mark.parametrize("size", [16, 24, 32])
def test_encrypted_messages_fill_whole_blocks_and_never_repeat(size: int) -> None:
    key = (KEY * 2)[:size]
    ident = Identity(account="1A2B", key=key)
    one = encode(ident, 1, SiaEvent(code="HA", zone=12), now=NOW)
    two = encode(ident, 1, SiaEvent(code="HA", zone=12), now=NOW)
    assert one != two  # a random pad: the same event never gives the same cipher text
    hex_part = one.split(b"[", 1)[1].rstrip(b"\r")
    assert len(hex_part) % 32 == 0 and one[9:19] == b'"*SIA-DCS"'
    event = parse(one, key)
    assert (event.code, event.message, event.timestamp.timestamp()) == ("HA", "012", NOW)
    null = parse(encode(ident, 2, None, now=NOW), key)
    assert (null.message_type.value, null.sequence, null.encrypted) == ("NULL", "0002", True)


def test_text_is_folded_to_the_ascii_dc03_allows() -> None:
    assert fold("Khoa Cấp cứu — Phòng 105 [B]|^/x_") == "Khoa Cap cuu Phong 105 B x"
    assert fold("Đường  Trần\tHưng Đạo\x00") == "Duong Tran Hung Dao"
    assert len(fold("Khoa " * 40)) <= 64


def test_identity_and_event_are_validated() -> None:
    for bad in ({"account": "12"}, {"account": "XYZ1"}, {"account": "1" * 17},
                {"account": "123", "line": ""}, {"account": "123", "receiver": "1234567"},
                {"account": "123", "key": b"short"}):
        with pytest.raises(Dc09Error):
            Identity(**bad)  # type: ignore[arg-type]
    for bad_event in ({"code": "pa"}, {"code": "PAX"}, {"code": "PA", "zone": 10_000}):
        with pytest.raises(Dc09Error):
            SiaEvent(**bad_event)  # type: ignore[arg-type]
    with pytest.raises(Dc09Error):
        encode(Identity(account="123"), 10_000, None, now=NOW)


def test_every_code_we_accept_is_one_pysiaalarm_knows() -> None:
    assert KNOWN_CODES <= set(SIA_CODES)
    assert {"PA", "PR", "HA", "HR", "TA", "TR", "XT", "XR", "RP", "RX"} <= KNOWN_CODES


def test_answers_are_decoded_and_checked() -> None:
    ident = Identity(account="1A2B", line="2", key=KEY)
    event = parse(encode(ident, 31, SiaEvent(code="PA"), now=NOW), KEY)
    event.sia_account.allowed_timeband = None
    ack = decode_answer(event.create_response(), ident)
    assert (ack.kind, ack.seq, ack.encrypted, ack.account) == (AnswerKind.ACK, 31, True, "1A2B")
    nak = decode_answer(b'\n' + _framed(b'"NAK"0000R0L0A0[]_11:06:40,11-18-2026') + b"\r", ident)
    assert (nak.kind, nak.timestamp) == (AnswerKind.NAK, NOW)
    with pytest.raises(Dc09Error, match="CRC"):
        decode_answer(b'\n0000000F"ACK"0031L2#1A2B[]\r', ident)
    with pytest.raises(Dc09Error, match=r"wrong key|not ASCII|printable"):
        decode_answer(event.create_response(), Identity(account="1A2B", key=b"F" * 16))
    lenient = decode_answer(b"\n" + _framed(b'"ACK"0031L2#1A2B[]', length=0x99) + b"\r", ident)
    assert lenient.kind == AnswerKind.ACK and not lenient.length_ok


def _framed(body: bytes, length: int | None = None) -> bytes:
    return b"%04X%04X%s" % (crc16(body), len(body) if length is None else length, body)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.text(alphabet='0123456789ABCDEF"*ACKNDUHRSPL#[]_:,-\r\n', max_size=120)
                 .map(lambda t: t.encode())))
def test_garbage_answers_raise_only_dc09_error(raw: bytes) -> None:
    try:
        decode_answer(raw, Identity(account="1A2B", key=KEY))
    except Dc09Error:
        pass


def test_sequences_are_durable_and_a_replay_reuses_its_number(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int, int]:
        journal = Journal(tmp_path / "journal.sqlite3")
        journal.open()
        await journal.start()
        seqs = Sequences(journal)
        seqs.load()
        first = await seqs.claim("arc", "esc-1")
        again = await seqs.claim("arc", "esc-1")
        await seqs.next("arc")
        await journal.stop()
        journal.close()
        reopened = Journal(tmp_path / "journal.sqlite3")  # a crash and a restart
        reopened.open()
        await reopened.start()
        after = Sequences(reopened)
        after.load()
        replayed = await after.claim("arc", "esc-1")
        fresh = await after.claim("arc", "esc-2")
        await after.release("arc", "esc-1")
        await reopened.stop()
        reopened.close()
        return first, again, replayed, fresh

    assert asyncio.run(scenario()) == (1, 1, 1, 3)


def test_sequences_wrap_after_9999() -> None:
    class Memory:
        def __init__(self) -> None:
            self.kv = {"dc09:arc": {"last": 9998, "open": {}}}

        def kv_all(self, prefix: str) -> dict[str, object]:
            return dict(self.kv)

        async def commit(self, batch: object) -> None:
            self.kv.update(batch.kv)  # type: ignore[attr-defined]

    async def scenario() -> list[int]:
        seqs = Sequences(Memory())
        seqs.load()
        return [await seqs.next("arc") for _ in range(3)]

    assert asyncio.run(scenario()) == [9999, 1, 2]
