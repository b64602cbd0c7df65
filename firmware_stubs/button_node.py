"""Serial panic button node firmware (MicroPython), speaking the PB1 bus protocol (SPEC §2).

Runs as is on a MicroPython board (``main.py`` calls ``ButtonNode(...).run()``) and, through
:mod:`firmware_stubs.host`, under CPython with fake pins, UART and clock. It keeps to the
MicroPython subset: no typing imports, no dataclasses, ``time.ticks_*`` arithmetic.

Behaviour:
- button (active low, pulled up) debounced for ``debounce_ms``: ``PRESS`` on press,
  ``HOLD`` (value = whole seconds held) once it is held ``hold_ms``, ``RELEASE`` on release;
- tamper switch (closed = 0 = normal): ``TAMPER`` when it opens, ``TAMPER_OK`` when it closes;
- ``BOOT`` at start; ``HB`` every ``hb_ms`` (value = uptime in s), not ACKed;
- every other frame is sent stop-and-wait: retransmitted with the same seq, with doubling
  backoff plus jitter, until its ACK arrives or ``max_attempts`` is spent;
- seq persists in a small file, reserved ``SEQ_BLOCK`` at a time to spare the flash;
- the LED state follows the value of ACK and STATE frames (0 idle .. 4 police acknowledged).
"""

import binascii
import hashlib
import os
import time

from machine import ADC, UART, Pin

SEQ_BLOCK = 16  # seqs reserved per flash write; a reboot skips at most this many
MAX_LINE = 128
RELIABLE_QUEUE = 16  # frames waiting for their turn; the oldest is dropped beyond this


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


def hmac_sha256(key, msg):
    """HMAC-SHA256 by hand: MicroPython has ``hashlib.sha256`` but no ``hmac`` module."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + msg).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


class ButtonNode:
    """One node. Call :meth:`start` once, then :meth:`step` every few ms (or :meth:`run`)."""

    def __init__(
        self,
        node_id,
        uart,
        button,
        tamper=None,
        led=None,
        adc=None,
        key=None,
        seq_path="seq.dat",
        clock=time,
        hold_ms=3000,
        debounce_ms=30,
        hb_ms=60000,
        ack_timeout_ms=500,
        backoff_max_ms=4000,
        max_attempts=10,
        vref_mv=3300,
        divider=2,
    ):
        self.node_id = node_id
        self.uart = uart
        self.button = button
        self.tamper = tamper
        self.led = led
        self.adc = adc
        self.key = key
        self.seq_path = seq_path
        self.clock = clock
        self.hold_ms = hold_ms
        self.debounce_ms = debounce_ms
        self.hb_ms = hb_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.backoff_max_ms = backoff_max_ms
        self.max_attempts = max_attempts
        self.vref_mv = vref_mv
        self.divider = divider
        self.led_state = 0
        self.sent = 0  # frames written, retransmissions included
        self.acked = 0
        self.gave_up = 0  # frames dropped after max_attempts
        self._rx = b""
        self._queue = []
        self._inflight = None  # [seq, line, attempts, due_ticks]
        self._rand = (node_id * 2654435761) & 0xFFFFFFFF or 1

    # -- start-up ---------------------------------------------------------------------

    def start(self):
        t = self.clock
        now = t.ticks_ms()
        self._boot = now
        self._hb_due = t.ticks_add(now, self.hb_ms)
        self._seq = self._load_seq()
        self._seq_limit = self._seq
        self._button = self._input(self.button)
        self._tamper = self._input(self.tamper) if self.tamper is not None else None
        self.held_reported = False
        self._queue.append(("BOOT", 0))
        if self._tamper is not None and self._tamper[0]:
            self._queue.append(("TAMPER", 0))
        self._show_led()

    def _input(self, pin):
        level = pin.value()
        return [level, level, self.clock.ticks_ms()]  # stable, raw, raw changed at

    def _load_seq(self):
        try:
            with open(self.seq_path) as f:
                return int(f.read().strip()) & 0xFFFF
        except (OSError, ValueError):
            return 0

    def _save_seq_limit(self, limit):
        tmp = self.seq_path + ".new"
        with open(tmp, "w") as f:
            f.write(str(limit))
        os.rename(tmp, self.seq_path)

    def _next_seq(self):
        """A fresh seq; the flash holds a bound no used seq ever reaches."""
        seq = self._seq
        if seq == self._seq_limit:
            self._seq_limit = (seq + SEQ_BLOCK) & 0xFFFF
            self._save_seq_limit(self._seq_limit)
        self._seq = (seq + 1) & 0xFFFF
        return seq

    # -- the loop ---------------------------------------------------------------------

    def run(self, period_ms=5):
        self.start()
        while True:
            self.step()
            self.clock.sleep_ms(period_ms)

    def step(self):
        """One poll: read the UART, sample inputs, heartbeat, (re)transmit. Never blocks."""
        now = self.clock.ticks_ms()
        self._receive()
        self._poll_button(now)
        self._poll_tamper(now)
        self._heartbeat(now)
        self._transmit(now)

    def _debounced(self, state, level, now):
        """Update a [stable, raw, since] record; return the new stable level or None."""
        if level != state[1]:
            state[1] = level
            state[2] = now
            return None
        if level != state[0] and self.clock.ticks_diff(now, state[2]) >= self.debounce_ms:
            state[0] = level
            return level
        return None

    def _poll_button(self, now):
        changed = self._debounced(self._button, self.button.value(), now)
        if changed == 0:
            self._pressed_at = self._button[2]
            self.held_reported = False
            self._enqueue("PRESS", 0)
        elif changed == 1:
            self._enqueue("RELEASE", 0)
        elif self._button[0] == 0 and not self.held_reported:
            held = self.clock.ticks_diff(now, self._pressed_at)
            if held >= self.hold_ms:
                self.held_reported = True
                self._enqueue("HOLD", held // 1000)

    def _poll_tamper(self, now):
        if self._tamper is None:
            return
        changed = self._debounced(self._tamper, self.tamper.value(), now)
        if changed is not None:
            self._enqueue("TAMPER" if changed else "TAMPER_OK", 0)

    def _enqueue(self, kind, value):
        if len(self._queue) >= RELIABLE_QUEUE:
            self._queue.pop(0)
            self.gave_up += 1
        self._queue.append((kind, value))

    def _heartbeat(self, now):
        t = self.clock
        if t.ticks_diff(now, self._hb_due) < 0:
            return
        self._hb_due = t.ticks_add(now, self.hb_ms)
        if self._inflight is not None:
            return  # a newer HB seq would make the pending frame's retransmission a replay
        uptime_s = t.ticks_diff(now, self._boot) // 1000
        self._write(self._encode(self._next_seq(), "HB", uptime_s))

    def _transmit(self, now):
        t = self.clock
        if self._inflight is None and self._queue:
            kind, value = self._queue.pop(0)
            seq = self._next_seq()
            self._inflight = [seq, self._encode(seq, kind, value), 0, now]
        frame = self._inflight
        if frame is None or t.ticks_diff(now, frame[3]) < 0:
            return
        if frame[2] >= self.max_attempts:
            self._inflight = None
            self.gave_up += 1
            return
        self._write(frame[1])
        frame[2] += 1
        frame[3] = t.ticks_add(now, self._backoff(frame[2]))

    def _backoff(self, attempts):
        """Doubling wait (ms) with jitter, so nodes that collided do not collide again."""
        base = min(self.ack_timeout_ms << (attempts - 1), self.backoff_max_ms)
        self._rand = (self._rand * 1103515245 + 12345) & 0x7FFFFFFF
        return base + self._rand % (self.ack_timeout_ms // 2 + 1)

    def _write(self, line):
        self.uart.write(line)
        self.sent += 1

    # -- frames -----------------------------------------------------------------------

    def battery_mv(self):
        if self.adc is None:
            return 0
        return self.adc.read_u16() * self.vref_mv * self.divider // 65535

    def _encode(self, seq, kind, value):
        text = f"PB1,{self.node_id},{seq},{kind},{value},{self.battery_mv()}"
        body = text.encode()
        if self.key is not None:
            body += b"," + self._mac(body)
        return b"$" + body + f"*{crc16(body):04X}\n".encode()

    def _mac(self, signed):
        return binascii.hexlify(hmac_sha256(self.key, signed)[:8])

    def _receive(self):
        data = self.uart.read(256)
        if not data:
            return
        self._rx += data
        while b"\n" in self._rx:
            line, self._rx = self._rx.split(b"\n", 1)
            self._on_line(line)
        if len(self._rx) > MAX_LINE + 2:  # garbage without a line end: keep a frame start
            start = self._rx.rfind(b"$")
            keep = start >= 0 and len(self._rx) - start <= MAX_LINE
            self._rx = self._rx[start:] if keep else b""

    def _on_line(self, line):
        start = line.rfind(b"$")  # resynchronise on the last start of frame
        parsed = self._parse(line[start:] if start > 0 else line)
        if parsed is None:
            return
        kind, seq, value = parsed
        if kind == b"ACK":
            frame = self._inflight
            if frame is None or frame[0] != seq:
                return  # a late ACK for a frame already done
            self._inflight = None
            self.acked += 1
        elif kind != b"STATE":
            return
        self.led_state = value
        self._show_led()

    def _parse(self, line):
        """(type, seq, value) of a valid downlink frame for this node, else None."""
        if line.endswith(b"\r"):
            line = line[:-1]
        star = line.rfind(b"*")
        if len(line) > MAX_LINE or not line.startswith(b"$PB1,") or star != len(line) - 5:
            return None
        body = line[1:star]
        fields = body.split(b",")
        try:
            if len(fields) not in (6, 7) or int(fields[1]) != self.node_id:
                return None  # another node's frame: skip it before the CRC work
            if int(line[star + 1 :], 16) != crc16(body):
                return None
            seq, value = int(fields[2]), int(fields[4])
        except ValueError:
            return None
        if self.key is not None and (len(fields) != 7 or fields[6] != self._mac(body[:-17])):
            return None
        return fields[3], seq, value

    def _show_led(self):
        if self.led is not None:
            self.led.value(1 if self.led_state else 0)


def main(node_id, key=None):
    """Entry point on the board (``main.py``); pin numbers are those of the reference PCB."""
    node = ButtonNode(
        node_id,
        UART(1, 115200),
        Pin(4, Pin.IN, Pin.PULL_UP),
        tamper=Pin(5, Pin.IN, Pin.PULL_UP),
        led=Pin(2, Pin.OUT),
        adc=ADC(26),
        key=key,
    )
    node.run()
