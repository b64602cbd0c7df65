"""The PB1 frame codec: known vectors, every reject reason, round trips, fuzzing."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.frames import (
    DOWNLINK,
    MAX_LINE,
    UNKNOWN_NODE,
    Frame,
    FrameError,
    FrameType,
    LineSplitter,
    ack_frame,
    crc16_ccitt_false,
    decode_frame,
    encode_frame,
)
from gateway.core.errors import GatewayError

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def unkeyed(node: int) -> bytes | None:
    return None


def keyed(node: int) -> bytes:
    return KEY


def only_12(node: int):  # type: ignore[no-untyped-def]
    return None if node == 12 else UNKNOWN_NODE


def reason(line: bytes, key_for=unkeyed, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(FrameError) as info:
        decode_frame(line, key_for, **kw)
    return info.value.reason


def with_crc(body: bytes) -> bytes:
    return b"$" + body + b"*%04X\n" % crc16_ccitt_false(body)


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_known_unkeyed_vector() -> None:
    frame = Frame(12, 7, FrameType.PRESS, 0, 2950)
    assert encode_frame(frame) == b"$PB1,12,7,PRESS,0,2950*3F09\n"
    assert decode_frame(b"$PB1,12,7,PRESS,0,2950*3F09\n", unkeyed) == frame


def test_known_keyed_vector_matches_hmac_by_hand() -> None:
    signed = b"PB1,12,7,PRESS,0,2950"
    mac = hmac.new(KEY, signed, hashlib.sha256).hexdigest()[:16].encode()
    body = signed + b"," + mac
    expected = b"$" + body + b"*" + f"{crc16_ccitt_false(body):04X}".encode() + b"\n"
    assert encode_frame(Frame(12, 7, FrameType.PRESS, 0, 2950), KEY) == expected
    assert decode_frame(expected, keyed).seq == 7


def test_ack_has_the_spec_shape() -> None:
    line = encode_frame(ack_frame(12, 7, 1))
    assert line.startswith(b"$PB1,12,7,ACK,1,0*")
    assert decode_frame(line, unkeyed, accept=DOWNLINK).value == 1


def test_crlf_tolerated_and_lowercase_crc_accepted() -> None:
    assert decode_frame(b"$PB1,12,7,PRESS,0,2950*3F09\r\n", unkeyed).node == 12
    assert decode_frame(b"$PB1,12,7,PRESS,0,2950*3f09", unkeyed).node == 12


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"$" + b"A" * MAX_LINE + b"\n", "too_long"),
        (b"$PB1,12,7,PRESS,0,2950*3F08\n", "bad_crc"),
        (b"PB1,12,7,PRESS,0,2950*3F09\n", "malformed"),
        (b"$PB1,12,7,PRESS,0,2950\n", "malformed"),
        (b"\n", "malformed"),
        (with_crc(b"PB2,12,7,PRESS,0,2950"), "malformed"),
        (with_crc(b"PB1,12,7,PRESS,0"), "malformed"),
        (with_crc(b"PB1,0,7,PRESS,0,2950"), "malformed"),
        (with_crc(b"PB1,65536,7,PRESS,0,2950"), "malformed"),
        (with_crc(b"PB1,12,65536,PRESS,0,2950"), "malformed"),
        (with_crc(b"PB1,12,07,PRESS,0,2950"), "malformed"),
        (with_crc(b"PB1,12,+7,PRESS,0,2950"), "malformed"),
        (with_crc(b"PB1,12,7,PRESS,x,2950"), "malformed"),
        (with_crc(b"PB1,12,7,PRESS,0,2950,XYZ"), "malformed"),
        (with_crc(b"PB1,12,7,SHOUT,0,2950"), "unknown_type"),
        (with_crc(b"PB1,12,7,ACK,0,0"), "unknown_type"),  # downlink is not uplink
        (with_crc(b"PB1,13,7,PRESS,0,2950"), "unknown_node"),
    ],
)
def test_rejects(line: bytes, expected: str) -> None:
    assert reason(line, only_12) == expected


def test_line_of_exactly_max_is_not_too_long() -> None:
    assert reason(b"$" + b"A" * (MAX_LINE - 1) + b"\r\n") == "malformed"


def test_mac_rules() -> None:
    unsigned = encode_frame(Frame(12, 7, FrameType.PRESS))
    assert reason(unsigned, keyed) == "missing_mac"
    forged = encode_frame(Frame(12, 7, FrameType.PRESS), b"another key 1234")
    with pytest.raises(FrameError) as info:
        decode_frame(forged, keyed)
    err = info.value
    assert (err.reason, err.node, err.type) == ("bad_mac", 12, "PRESS")
    # a node without a key may carry a MAC; it is ignored
    assert decode_frame(forged, unkeyed).seq == 7


def test_error_is_a_gateway_error_and_value_error() -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(b"junk", unkeyed)
    assert isinstance(info.value, GatewayError) and isinstance(info.value, ValueError)


frames = st.builds(
    Frame,
    node=st.integers(1, 65535),
    seq=st.integers(0, 65535),
    type=st.sampled_from(sorted(FrameType)),
    value=st.integers(-(10**9) + 1, 10**9 - 1),
    batt_mv=st.integers(0, 65535),
)


@given(frame=frames, key=st.one_of(st.none(), st.binary(min_size=16, max_size=64)))
@settings(max_examples=500, deadline=None)
def test_round_trip(frame: Frame, key: bytes | None) -> None:
    line = encode_frame(frame, key)
    assert len(line) - 1 <= MAX_LINE
    assert decode_frame(line, lambda n: key, accept=frozenset(FrameType)) == frame


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid frame with a few bytes overwritten: close to valid, so it reaches deep checks."""
    line = bytearray(encode_frame(draw(frames), draw(st.sampled_from([None, KEY]))))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(line) - 1))
        line[pos] = draw(st.integers(0, 255))
    return bytes(line)


lines = st.one_of(
    st.binary(max_size=300),
    st.binary(min_size=MAX_LINE + 1, max_size=2000),
    st.text(alphabet="$PB1,*0123456789ABCDEF-\r\nPRESSHOLDACK", max_size=160).map(str.encode),
    mutated(),
)


@given(line=lines, key=st.sampled_from([None, KEY, UNKNOWN_NODE]))
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_decode_raises_only_frame_error(line: bytes, key: object) -> None:
    try:
        frame = decode_frame(line, lambda n: key)  # type: ignore[arg-type,return-value]
    except FrameError as err:
        assert err.reason in {
            "too_long", "bad_crc", "bad_mac", "missing_mac",
            "unknown_node", "unknown_type", "malformed",
        }  # fmt: skip
    else:
        again = encode_frame(frame, key if isinstance(key, bytes) else None)
        assert decode_frame(again, lambda n: key) == frame  # type: ignore[arg-type,return-value]


def test_splitter_cuts_lines_across_chunks() -> None:
    s = LineSplitter()
    assert s.feed(b"$PB1,1,") == []
    assert s.feed(b"2,HB,0,0*0000\r\n$A\nB") == [b"$PB1,1,2,HB,0,0*0000\r", b"$A"]
    assert s.feed(b"\n") == [b"B"]


def test_splitter_discards_overlong_garbage_with_bounded_memory() -> None:
    s = LineSplitter()
    out = []
    for _ in range(1000):
        out += s.feed(b"x" * 1000)
        assert s.pending <= MAX_LINE + 1
    out += s.feed(b"tail\n" + encode_frame(Frame(1, 1, FrameType.HB)))
    assert len(out) == 2
    assert reason(out[0]) == "too_long"
    assert decode_frame(out[1], unkeyed).type == FrameType.HB
    assert s.dropped > 990_000


@given(chunks=st.lists(st.binary(max_size=400), max_size=30))
@settings(max_examples=300, deadline=None)
def test_splitter_never_grows(chunks: list[bytes]) -> None:
    s = LineSplitter()
    for chunk in chunks:
        for line in s.feed(chunk):
            assert b"\n" not in line and len(line) <= MAX_LINE + 2
        assert s.pending <= MAX_LINE + 1
