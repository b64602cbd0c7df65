"""A simulated LTE modem (SIM7600 / A7670 class) on a pseudo-terminal, in PDU mode.

The driver opens :attr:`ModemSimulator.port` like a real ``/dev/ttyUSB2``. The simulator
answers the AT commands the gateway uses (TS 27.005/27.007) the way the modules do: echo
until ``ATE0``, ``+CMEE`` error formats, no ``+CMTI`` until ``AT+CNMI`` asks for it, the
``> `` prompt of ``AT+CMGS=<n>``, a PDU read up to Ctrl-Z (ESC aborts), ``<n>`` checked
against the TPDU length. Sent PDUs are decoded with :mod:`drivers.pdu` and their parts
joined, so :meth:`~ModemSimulator.sent_messages` shows the text as a police phone would.

Faults a technician or a test can switch on, from any thread: ``+CMS ERROR`` for the next
sends, lost registration, no SIM, a silent modem, a +CMTI slipped into the next answer.
One background thread serves the pty; :meth:`start` and :meth:`stop` own it.
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
import tty
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from drivers.at import CME_ERRORS, CMS_ERRORS, REGISTERED
from drivers.pdu import PduError, Reassembler, decode_submit, encode_deliver

CTRL_Z, ESC = 0x1A, 0x1B
VN_TIME = timezone(timedelta(hours=7))


class SentSms(NamedTuple):
    """A message as the recipient's phone shows it: ``parts`` SMS joined into ``text``."""

    number: str
    text: str
    parts: int


class ModemSimulator:
    """A modem on a pty. Thread-safe controls; :meth:`start` before use, :meth:`stop` after."""

    def __init__(
        self,
        *,
        smsc: str | None = "+84980200030",
        rssi: int = 20,
        capacity: int = 30,
        unregistered_error: int = 500,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.smsc = smsc
        self.rssi, self.ber = rssi, 99
        self.capacity = capacity
        self.unregistered_error = unregistered_error
        self.creg, self.cereg = 1, 1
        self.sim = True
        self.silent = False
        self._fail_sends: list[int] = []
        self._echo, self._cmee, self._cmgf, self._cnmi_mt = True, 0, 0, 0
        self._lock = threading.RLock()
        self._stored: dict[int, tuple[int, str]] = {}  # index -> (stat 0 unread / 1 read, pdu)
        self._sent: list[SentSms] = []
        self._sent_at: list[float] = []
        self._commands: list[str] = []
        self._clock = clock
        self._timed: list[tuple[float, str]] = []
        self._urc_next: list[str] = []
        self._joiner = Reassembler()
        self._mr, self._ref = 0, 0
        self._buf = bytearray()
        self._pdu_length: int | None = None  # set while reading a PDU after the prompt
        self._master = self._slave = -1
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self.port = ""

    # -- lifecycle --------------------------------------------------------------------

    def start(self, *, boot_banner: bool = True) -> None:
        """Open the pty and serve it; ``boot_banner`` queues ``RDY`` / ``+CPIN: READY`` /
        ``SMS DONE`` as a module prints them after power-on."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._wake = os.pipe()
        if boot_banner:
            self._write_lines(["RDY", "+CPIN: READY" if self.sim else "+CPIN: NOT READY"])
            self._write_lines(["SMS DONE"] if self.sim else [])
        self._thread = threading.Thread(target=self._serve, name="modem-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self._wake is not None:
            os.write(self._wake[1], b"x")
            self._thread.join(5)
            self._thread = None
        for fd in (self._master, self._slave, *(self._wake or ())):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        self._wake = None

    # -- controls and observations ------------------------------------------------------

    def fail_sends(self, count: int = 1, code: int = 500) -> None:
        """Answer ``+CMS ERROR: <code>`` to the next ``count`` sends."""
        with self._lock:
            self._fail_sends += [code] * count

    def set_registration(self, creg: int, cereg: int | None = None) -> None:
        """Set the ``<stat>`` of +CREG and +CEREG (0 not searching, 1 home, 2 searching ...)."""
        with self._lock:
            self.creg, self.cereg = creg, creg if cereg is None else cereg

    def set_sim(self, present: bool) -> None:
        with self._lock:
            self.sim = present

    def set_silent(self, silent: bool) -> None:
        """A hung module: reads everything, answers nothing (not even the echo)."""
        with self._lock:
            self.silent = silent

    def set_rssi(self, rssi: int) -> None:
        with self._lock:
            self.rssi = rssi

    def deliver_sms(
        self,
        sender: str,
        text: str,
        *,
        sent_at: datetime | None = None,
        during_next_command: bool = False,
        alphanumeric: bool = False,
    ) -> list[int]:
        """An incoming SMS (several parts if long): stored on the SIM as SMS-DELIVER PDUs,
        each announced by ``+CMTI: "SM",<index>`` (if ``AT+CNMI`` asked for it). With
        ``during_next_command`` the +CMTI lines come inside the next command's answer,
        before its final result. ``alphanumeric`` sends ``sender`` as an alphanumeric
        address (type 0xD0) even when it is all digits, as a spoofing sender can.
        Returns the storage indices used."""
        if not alphanumeric and re.fullmatch(r"[+0-9\s\-.()]+", sender):
            sender = re.sub(r"[^+0-9]", "", sender)  # "0912 345 678" as a phone shows it
        with self._lock:
            self._ref = (self._ref + 1) % 256
            when = sent_at or datetime.now(VN_TIME)
            pdus = encode_deliver(
                sender, text, smsc=self.smsc or "+84", sent_at=when, ref=self._ref,
                alphanumeric=alphanumeric,
            )
            indices = []
            for pdu in pdus:
                free = [i for i in range(self.capacity) if i not in self._stored]
                if not free:
                    break
                self._stored[free[0]] = (0, pdu)
                indices.append(free[0])
            urcs = [f'+CMTI: "SM",{i}' for i in indices] if self._cnmi_mt == 1 else []
            if during_next_command:
                self._urc_next += urcs
            elif not self.silent:
                self._write_lines(urcs)
            return indices

    def sent_messages(self) -> list[SentSms]:
        with self._lock:
            return list(self._sent)

    def sent_log(self) -> list[tuple[float, SentSms]]:
        """Each sent message with the wall-clock time its last part arrived."""
        with self._lock:
            return list(zip(self._sent_at, self._sent, strict=True))

    def stored(self) -> dict[int, str]:
        """Messages on the SIM by index (hex PDUs), as ``AT+CMGL=4`` would list them."""
        with self._lock:
            return {i: pdu for i, (_, pdu) in self._stored.items()}

    def commands(self) -> list[str]:
        """Every command line received, in order (also while silent)."""
        with self._lock:
            return list(self._commands)

    def command_log(self) -> list[tuple[float, str]]:
        """:meth:`commands` with the time each line was read (``clock()``, by default
        ``time.perf_counter`` seconds), taken as its carriage return arrives."""
        with self._lock:
            return list(self._timed)

    # -- the line -----------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._wake is not None
        while True:
            ready, _, _ = select.select([self._master, self._wake[0]], [], [])
            if self._wake[0] in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:  # EIO while no one holds the slave open: wait for the next open
                if select.select([self._wake[0]], [], [], 0.05)[0]:
                    return
                continue
            with self._lock:
                self._receive(data)

    def _receive(self, data: bytes) -> None:
        if self._echo and not self.silent:
            self._write(data)
        for byte in data:
            if self._pdu_length is not None:
                self._pdu_byte(byte)
            elif byte == 0x0D:
                line = self._buf.decode("ascii", errors="replace").strip()
                self._buf.clear()
                if line:
                    self._log(line)
                    if not self.silent:
                        self._command(line)
            elif byte != 0x0A:
                self._buf.append(byte)

    def _pdu_byte(self, byte: int) -> None:
        if byte not in (CTRL_Z, ESC):
            self._buf.append(byte)
            return
        text = self._buf.decode("ascii", errors="replace").strip()
        length, self._pdu_length = self._pdu_length, None
        self._buf.clear()
        self._log(f"<PDU {text}>" if byte == CTRL_Z else "<ESC>")
        if self.silent:
            return
        if byte == ESC:
            self._reply([], "OK")
        else:
            self._submit(text, length or 0)

    def _log(self, line: str) -> None:
        self._commands.append(line)
        self._timed.append((self._clock(), line))

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except (BlockingIOError, OSError):
            pass  # nobody reads: a UART's bytes are lost the same way

    def _write_lines(self, lines: list[str]) -> None:
        self._write(b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines))

    def _reply(self, lines: list[str], final: str) -> None:
        urcs, self._urc_next = self._urc_next, []
        self._write_lines([*lines, *urcs, final])

    def _error(self, kind: str, code: int) -> str:
        """A final error in the format ``AT+CMEE`` chose (0 plain, 1 numeric, 2 verbose)."""
        if self._cmee == 0:
            return "ERROR"
        table = CMS_ERRORS if kind == "CMS" else CME_ERRORS
        return f"+{kind} ERROR: {code if self._cmee == 1 else table.get(code, 'unknown')}"

    # -- commands -----------------------------------------------------------------------

    def _command(self, line: str) -> None:
        upper = line.upper()
        if not upper.startswith("AT"):
            return  # line noise; a module ignores it
        body = upper[2:]
        for pattern, handler in _HANDLERS:
            m = re.fullmatch(pattern, body)
            if m:
                handler(self, *m.groups())
                return
        self._reply([], "ERROR")

    def _setting(self, name: str, value: str) -> None:
        if name == "E":
            self._echo = value == "1"
        elif name == "+CMEE":
            self._cmee = int(value)
        elif name == "+CMGF":
            self._cmgf = int(value)
        elif name == "+CNMI":
            parts = value.split(",")
            self._cnmi_mt = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self._reply([], "OK")

    def _identity(self, name: str) -> None:
        """A Quectel EG25-G with a Viettel SIM; ``AT+CCID`` is refused (vendor command), so
        a client must try ``AT+QCCID`` as it would on the real module."""
        if name in ("+CIMI", "+QCCID", "+COPS?") and not self.sim:
            self._reply([], self._error("CME", 10))
            return
        registered = self.creg in REGISTERED or self.cereg in REGISTERED
        answers = {"+CGMI": "Quectel", "+CGMM": "EG25", "+CGMR": "EG25GGBR07A08M2G",
                   "+CGSN": "867698040000001", "+CIMI": "452040000000001",
                   "+QCCID": "+QCCID: 89840480000000000011",
                   "+COPS?": '+COPS: 0,0,"Viettel",7' if registered else "+COPS: 0"}
        self._reply([answers[name]], "OK")

    def _query(self, name: str) -> None:
        if name == "+CPIN":
            if self.sim:
                self._reply(["+CPIN: READY"], "OK")
            else:
                self._reply([], self._error("CME", 10))
            return
        answers = {
            "+CREG": f"+CREG: 0,{self.creg if self.sim else 0}",
            "+CEREG": f"+CEREG: 0,{self.cereg if self.sim else 0}",
            "+CSQ": f"+CSQ: {self.rssi},{self.ber}",
            "+CSCA": f'+CSCA: "{self.smsc or ""}",{145 if self.smsc else 129}',
            "+CMGF": f"+CMGF: {self._cmgf}",
            "+CMEE": f"+CMEE: {self._cmee}",
        }
        self._reply([answers[name]], "OK")

    def _cmgs(self, length: str) -> None:
        if self._cmgf != 0:
            self._reply([], self._error("CMS", 302))
        elif not self.sim:
            self._reply([], self._error("CMS", 310))
        else:
            self._pdu_length = int(length)
            self._write(b"\r\n> ")

    def _submit(self, pdu: str, length: int) -> None:
        try:
            sms = decode_submit(pdu)
        except PduError:
            return self._reply([], self._error("CMS", 304))
        if sms.tpdu_length != length:
            return self._reply([], self._error("CMS", 304))
        if sms.smsc is None and not self.smsc:
            return self._reply([], self._error("CMS", 330))
        if self.creg not in REGISTERED and self.cereg not in REGISTERED:
            return self._reply([], self._error("CMS", self.unregistered_error))
        if self._fail_sends:
            return self._reply([], self._error("CMS", self._fail_sends.pop(0)))
        whole = self._joiner.add(sms, now=0.0)
        if whole is not None:
            self._sent.append(SentSms(whole.number, whole.text, whole.total))
            self._sent_at.append(time.time())
        self._mr = (self._mr + 1) % 256
        self._reply([f"+CMGS: {self._mr}"], "OK")

    def _cmgr(self, index: str) -> None:
        entry = self._stored.get(int(index))
        if entry is None:
            return self._reply([], self._error("CMS", 321))
        self._stored[int(index)] = (1, entry[1])
        tpdu_octets = len(entry[1]) // 2 - 1 - int(entry[1][:2], 16)
        self._reply([f"+CMGR: {entry[0]},,{tpdu_octets}", entry[1]], "OK")

    def _cmgd(self, index: str, flag: str | None) -> None:
        if flag and int(flag) == 4:
            self._stored.clear()
        else:
            self._stored.pop(int(index), None)
        self._reply([], "OK")

    def _cmgl(self, stat: str) -> None:
        lines = []
        for i, (s, pdu) in sorted(self._stored.items()):
            if int(stat) in (4, s):
                tpdu_octets = len(pdu) // 2 - 1 - int(pdu[:2], 16)
                lines += [f"+CMGL: {i},{s},,{tpdu_octets}", pdu]
                self._stored[i] = (1, pdu)
        self._reply(lines, "OK")


_HANDLERS: list[tuple[str, Callable[..., None]]] = [
    (r"", lambda sim: sim._reply([], "OK")),
    (r"(E)([01])", ModemSimulator._setting),
    (r"I", lambda sim: sim._reply(["SIMCOM_SIM7600E-H (simulated)", "Revision: sim"], "OK")),
    (r"(\+CMEE|\+CMGF)=([0-2])", ModemSimulator._setting),
    (r"(\+CNMI)=([0-9,]+)", ModemSimulator._setting),
    (r"(\+CREG|\+CEREG)=[0-2]", lambda sim, _name: sim._reply([], "OK")),
    (r"(\+CPIN|\+CREG|\+CEREG|\+CSCA|\+CMGF|\+CMEE)\?", ModemSimulator._query),
    (r"(\+CSQ)", ModemSimulator._query),
    (r"(\+CGMI|\+CGMM|\+CGMR|\+CGSN|\+CIMI|\+QCCID|\+COPS\?)", ModemSimulator._identity),
    (r"\+CMGS=([0-9]{1,3})", ModemSimulator._cmgs),
    (r"\+CMGR=([0-9]{1,3})", ModemSimulator._cmgr),
    (r"\+CMGD=([0-9]{1,3})(?:,([0-4]))?", ModemSimulator._cmgd),
    (r"\+CMGL=([0-4])", ModemSimulator._cmgl),
]
"""Command bodies (after ``AT``, upper case) and their handlers; others answer ``ERROR``."""
