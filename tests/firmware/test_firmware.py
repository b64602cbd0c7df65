"""The button node firmware on the host shim, with a manual clock: no real time passes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from drivers.frames import (
    UPLINK,
    Frame,
    FrameType,
    ack_frame,
    decode_frame,
    encode_frame,
    state_frame,
)
from firmware_stubs.host import ManualTicks, MemoryLink, NodeHardware, load_firmware
from gateway.serialbus.logic import is_newer

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
fw = load_firmware()


class Rig:
    """One node with fake hardware; ``sent()`` decodes what it wrote since the last call."""

    def __init__(self, tmp_path: Path, key: bytes | None = None, **opts: Any) -> None:
        self.ticks = ManualTicks(start_ms=(1 << 30) - 2000)  # crosses the ticks wrap early
        self.link = MemoryLink()
        self.hw = NodeHardware(self.link, battery_mv=2950)
        self.key = key
        self.seq_path = str(tmp_path / "seq.dat")
        self.opts = opts
        self.boot()

    def boot(self) -> None:
        self.node = fw.ButtonNode(
            7, self.hw.uart, self.hw.button, tamper=self.hw.tamper, led=self.hw.led,
            adc=self.hw.adc, key=self.key, seq_path=self.seq_path, clock=self.ticks,
            **self.opts,
        )  # fmt: skip
        self.node.start()

    def run(self, ms: int, step_ms: int = 5) -> None:
        for _ in range(ms // step_ms):
            self.ticks.advance(step_ms)
            self.node.step()

    def sent(self) -> list[Frame]:
        data = self.link.take_uplink()
        return [decode_frame(line, lambda n: self.key, UPLINK) for line in data.splitlines()]

    def ack(self, frame: Frame, led: int = 1, key: bytes | None = None) -> None:
        self.link.deliver(encode_frame(ack_frame(frame.node, frame.seq, led), key or self.key))
        self.node.step()


def kinds(frames: list[Frame]) -> list[str]:
    return [str(f.type) for f in frames]


def test_boot_frame_acked_and_led_follows(tmp_path: Path) -> None:
    rig = Rig(tmp_path, key=KEY)
    rig.node.step()
    (boot,) = rig.sent()
    assert (boot.type, boot.node, boot.value) == (FrameType.BOOT, 7, 0)
    assert abs(boot.batt_mv - 2950) <= 2
    rig.ack(boot, led=2)
    assert rig.node.led_state == 2 and rig.hw.led.value() == 1
    rig.link.deliver(encode_frame(state_frame(7, 500, 0), KEY))
    rig.node.step()
    assert rig.node.led_state == 0 and rig.hw.led.value() == 0


def test_debounce_ignores_bounce_and_glitches(tmp_path: Path) -> None:
    rig = Rig(tmp_path, debounce_ms=30)
    rig.node.step()
    rig.ack(rig.sent()[0])
    for level in (0, 1, 0, 1, 0, 1):  # a 5 ms glitch train shorter than the debounce
        rig.hw.button.drive(level)
        rig.run(5)
    rig.run(100)
    assert rig.sent() == []
    for level in (0, 1, 0, 1, 0):  # contact bounce, then held down
        rig.hw.button.drive(level)
        rig.run(5)
    rig.run(60)
    (press,) = rig.sent()
    assert press.type == FrameType.PRESS


def test_hold_sends_hold_once_with_seconds_then_release(tmp_path: Path) -> None:
    rig = Rig(tmp_path, hold_ms=3000)
    rig.node.step()
    rig.ack(rig.sent()[0])
    rig.hw.button.drive(0)
    rig.run(100)
    (press,) = rig.sent()
    rig.ack(press)
    rig.run(2800)
    assert rig.sent() == []
    rig.run(300)
    (hold,) = rig.sent()
    assert (hold.type, hold.value) == (FrameType.HOLD, 3)
    rig.ack(hold)
    rig.run(5000)
    assert rig.sent() == []
    rig.hw.button.drive(1)
    rig.run(100)
    assert kinds(rig.sent()) == ["RELEASE"]


def test_retransmits_same_bytes_with_backoff_then_gives_up(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ack_timeout_ms=200, backoff_max_ms=1000, max_attempts=5)
    times, lines = [], []
    for _ in range(4000):
        rig.ticks.advance(5)
        rig.node.step()
        data = rig.link.take_uplink()
        if data:
            times.append(rig.ticks.now_ms)
            lines.append(data)
    assert len(lines) == 5 and len(set(lines)) == 1  # same seq, same bytes
    gaps = [b - a for a, b in itertools.pairwise(times)]
    bases = [200, 400, 800, 1000]  # doubling, capped at backoff_max_ms, plus < 105 ms jitter
    assert all(base <= gap <= base + 105 for base, gap in zip(bases, gaps, strict=True))
    assert rig.node.gave_up == 1


def test_ack_stops_retransmission_only_for_the_right_frame(tmp_path: Path) -> None:
    rig = Rig(tmp_path, key=KEY, ack_timeout_ms=200)
    rig.node.step()
    (boot,) = rig.sent()
    rig.ack(Frame(7, (boot.seq + 1) % 65536, FrameType.BOOT))  # wrong seq
    rig.ack(Frame(8, boot.seq, FrameType.BOOT))  # another node's ACK
    rig.ack(boot, key=b"not the node key")  # forged
    rig.link.deliver(encode_frame(ack_frame(7, boot.seq, 1)))  # unsigned
    rig.link.deliver(b"$PB1,7,0,ACK,1,0*0000\ngarbage\n" + b"x" * 500)
    rig.run(300)
    assert [f.seq for f in rig.sent()] == [boot.seq]
    assert rig.node.acked == 0 and rig.node.led_state == 0
    rig.ack(boot)
    rig.run(5000)
    assert rig.sent() == [] and rig.node.acked == 1


def test_seq_persisted_across_reboot(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    seqs = []
    rig.node.step()
    for _ in range(40):
        (frame,) = rig.sent()
        seqs.append(frame.seq)
        rig.ack(frame)
        rig.hw.button.drive(0 if frame.type != FrameType.PRESS else 1)
        rig.run(60)
    seqs += [f.seq for f in rig.sent()]  # the last one, never ACKed
    assert seqs == list(range(seqs[0], seqs[0] + 41))
    rig.boot()  # RAM lost, the seq file kept
    rig.node.step()
    (boot,) = rig.sent()
    assert boot.type == FrameType.BOOT and is_newer(boot.seq, seqs[-1])
    assert (boot.seq - seqs[-1]) % 65536 <= 16
    assert int(Path(rig.seq_path).read_text()) > boot.seq  # reserved ahead, not per frame


def test_seq_wraps_at_65536(tmp_path: Path) -> None:
    Path(tmp_path / "seq.dat").write_text("65534")
    rig = Rig(tmp_path)
    got = []
    rig.node.step()
    for _ in range(4):
        (frame,) = rig.sent()
        got.append(frame.seq)
        rig.ack(frame)
        rig.hw.button.drive(0 if frame.type != FrameType.PRESS else 1)
        rig.run(60)
    assert got == [65534, 65535, 0, 1]


def test_heartbeat_with_uptime_not_while_a_frame_is_in_flight(tmp_path: Path) -> None:
    rig = Rig(tmp_path, hb_ms=1000, ack_timeout_ms=5000)
    rig.node.step()
    rig.run(1500)
    assert kinds(rig.sent()) == ["BOOT"]  # the unACKed BOOT holds the HB back
    rig.node.step()
    rig.ack(Frame(7, 0, FrameType.BOOT))
    rig.run(2000)
    hbs = rig.sent()
    assert kinds(hbs) == ["HB", "HB"] and hbs[-1].value == 3
    rig.hw.adc.set_mv(2400)
    rig.run(1000)
    (hb,) = rig.sent()
    assert abs(hb.batt_mv - 2400) <= 2


def test_tamper_open_and_closed(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.node.step()
    rig.ack(rig.sent()[0])
    rig.hw.tamper.drive(1)
    rig.run(100)
    (tamper,) = rig.sent()
    rig.ack(tamper)
    rig.hw.tamper.drive(0)
    rig.run(100)
    assert (tamper.type, kinds(rig.sent())) == (FrameType.TAMPER, ["TAMPER_OK"])


@pytest.mark.parametrize("key", [None, KEY])
def test_firmware_codec_agrees_with_gateway_codec(tmp_path: Path, key: bytes | None) -> None:
    rig = Rig(tmp_path, key=key)
    for seq, kind, value in [(1, "PRESS", 0), (65535, "HOLD", 12), (3, "HB", 86400)]:
        line = rig.node._encode(seq, kind, value)
        frame = decode_frame(line, lambda n: key)
        assert (frame.seq, frame.type, frame.value) == (seq, kind, value)
        assert encode_frame(frame, key) == line
