"""The cellular modem adapter: SMS out and in through an LTE module in PDU mode (SPEC §4).

It owns the serial port and nothing else. Bytes go through :class:`~drivers.at.AtParser`
(answers apart from URCs), texts through :mod:`drivers.pdu`. One command is on the line at a
time (an ``asyncio.Lock``), each with its own time-out; reading never blocks the loop (the
port's fd is watched with ``loop.add_reader``). A session opens the port, sends ``ATE0``,
``AT+CMEE=2``, ``AT+CMGF=0``, ``AT+CNMI=2,1,0,0,0``, then polls SIM, registration and signal
every ``poll_s`` and reads whatever the SIM holds (``AT+CMGL=4``: replies that arrived while
the gateway was away). A send waits until that start-up sequence is done (at most its
send time-out). A ``+CMTI`` is read with ``AT+CMGR``, handed to ``on_sms`` and only
then deleted. An absent port or a silent modem ends the session; :meth:`Modem.run` reports
trouble in :meth:`Modem.status` and reopens with capped backoff, and never raises.

Time-outs use ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 ``wait_for``
can swallow a cancellation that coincides with the answer, and ``run()`` must stop when the
TaskGroup cancels it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from drivers.at import (
    AtError,
    AtParser,
    ModemError,
    Prompt,
    Registration,
    Response,
    Urc,
    parse_cmgl,
    parse_cmgr,
    parse_cmgs,
    parse_cmti,
    parse_cpin,
    parse_csq,
    parse_registration,
)
from drivers.pdu import (
    Assembled,
    PduError,
    Reassembler,
    decode_deliver,
    encode_submit,
    normalize_number,
)
from drivers.serialport import PortOpener, keep_open, open_serial
from drivers.voice import CALL_URCS, CallResult, place_call
from gateway.core.backoff import Backoff
from gateway.core.clock import SystemClock
from gateway.core.ports import Clock, SmsHandler

__all__ = ["CallResult", "Modem", "ModemError", "ModemSettings", "SmsHandler", "open_serial"]

log = logging.getLogger(__name__)

INIT = ("AT", "ATE0", "AT+CMEE=2", "AT+CMGF=0")
NEW_MESSAGE_INDICATION = "AT+CNMI=2,1,0,0,0"  # store new SMS, announce with +CMTI
#: what ``identify`` asks, as gammu's ``identify`` shows it: (key, command, answer prefix);
#: the ICCID has no standard command, so the common vendor ones are tried in turn
IDENTITY = (("manufacturer", "AT+CGMI", None), ("model", "AT+CGMM", None),
            ("revision", "AT+CGMR", None), ("imei", "AT+CGSN", None), ("imsi", "AT+CIMI", None),
            ("iccid", "AT+CCID", "+CCID"), ("iccid", "AT+QCCID", "+QCCID"),
            ("iccid", "AT+ICCID", "+ICCID"))



@dataclass(frozen=True, slots=True)
class ModemSettings:
    """The ``[modem]`` section and its timings, in seconds."""

    port: str
    baudrate: int = 115200
    poll_s: float = 30.0
    command_timeout_s: float = 5.0
    send_timeout_s: float = 60.0  # +CMGS waits for the network; 35 s is not unusual
    silent_after: int = 2  # consecutive time-outs that mean the modem hung: reopen it
    reopen_min_s: float = 0.5
    reopen_max_s: float = 30.0
    reassembly_timeout_s: float = 600.0  # a part missing this long: deliver what came
    country_code: str = "84"
    name: str = "modem"
    call_poll_s: float = 1.0  # AT+CLCC while a call rings (its URCs are read at once)
    #: False for a technician's tool beside no gateway: received SMS stay on the SIM
    #: (``inbox`` lists them) instead of being handed over and deleted
    take_sms: bool = True


class _Exchange:
    """The futures of the command on the line: the ``> `` prompt and the final answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.prompt: asyncio.Future[None] = loop.create_future()
        self.response: asyncio.Future[Response] = loop.create_future()


class Modem:
    """An SMS channel's modem: ``run()`` it in the TaskGroup, ``send_sms`` from anywhere on
    the loop, ``status()`` for ``gateway/health``."""

    def __init__(
        self,
        settings: ModemSettings,
        *,
        on_sms: SmsHandler | None = None,
        clock: Clock | None = None,
        open_port: PortOpener = open_serial,
    ) -> None:
        self._settings = settings
        self._on_sms = on_sms
        self._clock = clock or SystemClock()
        self._open_port = open_port
        self._parser = AtParser()
        self._lock = asyncio.Lock()
        self._joiner = Reassembler(settings.reassembly_timeout_s)
        # SIM indices being handed over: a message stays on the SIM until its handler has
        # returned, and a poll or a +CMTI that finds it meanwhile must leave it alone
        self._in_hand: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd: int | None = None
        self._exchange: _Exchange | None = None
        self._urcs: asyncio.Queue[Urc] = asyncio.Queue()
        self._failed = asyncio.Event()
        self._failure: str | None = None
        self._ready = False
        self._started = asyncio.Event()  # set while a session is past its start-up sequence
        self._timeouts = 0
        self._ref = 0
        self._sim: str | None = None
        self._creg: Registration | None = None
        self._cereg: Registration | None = None
        self._rssi_dbm: int | None = None
        self._ber: int | None = None
        self._operator: str | None = None
        self._identity: dict[str, str] | None = None
        self._last_error: str | None = "not started"
        self._send_error: str | None = None
        self._counts = {"sent": 0, "send_failures": 0, "received": 0, "reopens": 0, "calls": 0}
        self._call_lock = asyncio.Lock()  # one call at a time; SMS and replies go between
        self._call_queue: asyncio.Queue[Urc] | None = None

    # -- public surface -----------------------------------------------------------------

    async def run(self) -> None:
        """Keep a session with the modem until cancelled; reopen with capped backoff."""
        self._loop = asyncio.get_running_loop()
        s = self._settings
        await keep_open(
            s.port, s.baudrate, serve=self._serve, on_open_failed=self._open_failed,
            backoff=Backoff(first_s=s.reopen_min_s, cap_s=s.reopen_max_s),
            open_port=self._open_port,
        )

    async def send_sms(self, number: str, text: str) -> list[int]:
        """Send ``text`` to ``number`` (``0…`` read as ``+84…``), as many parts as it needs;
        returns the network's message reference of each part. Raises :class:`ModemError`
        (``+CMS ERROR`` code and meaning, time-out, modem offline) or ``PduError``.

        A send while the modem is (re)starting waits for the start-up sequence to finish,
        at most ``send_timeout_s`` seconds (then ``ModemError``, kind ``offline``): before
        ``AT+CMGF=0`` a module would refuse the PDU with a bare ``ERROR``."""
        pdus = encode_submit(normalize_number(number, self._settings.country_code),
                             text, ref=self._next_ref())  # fmt: skip
        await self._started_or_offline()
        refs = []
        async with self._lock:
            try:
                for pdu in pdus:
                    refs.append(await self._submit(pdu.tpdu_length, pdu.hex))
            except ModemError as exc:
                self._counts["send_failures"] += 1
                if exc.kind not in ("offline", "timeout"):  # those show as "not answering"
                    self._send_error = str(exc)
                log.warning("event=sms_send_failed error=%s", exc)
                raise
        self._counts["sent"] += 1
        self._send_error = None
        return refs

    async def call(self, number: str, ring_s: float, *,
                   wanted: Callable[[], bool] = lambda: True) -> CallResult:
        """Ring ``number`` (``0…`` read as ``+84…``) for up to ``ring_s`` seconds, hang up,
        and say how it went (:mod:`drivers.voice`). Never raises for the call's outcome:
        a modem that cannot dial gives ``error`` with the reason. Calls queue one behind the
        other; SMS and incoming replies are served between the call's short commands.
        ``wanted`` is asked about once a second while it rings: false hangs up."""
        target = normalize_number(number, self._settings.country_code)
        async with self._call_lock:
            try:
                result = await place_call(self, target, ring_s, monotonic=self._clock.monotonic,
                                          poll_s=self._settings.call_poll_s, wanted=wanted)
            finally:
                self._call_queue = None
        self._counts["calls"] += 1
        log.info("event=call number=%s outcome=%s rang_s=%s", target, result.outcome,
                 result.rang_s)
        return result

    async def at(self, command: str) -> Response:
        """One command and its whole answer, once the modem is started (for calls)."""
        await self._started_or_offline()
        return await self._command(command)

    def call_urcs(self) -> asyncio.Queue[Urc]:
        """A fresh queue that receives the call URCs (``BUSY``, ``NO CARRIER``, ``+CLCC``,
        ``VOICE CALL: …``) until the call in progress ends."""
        self._call_queue = asyncio.Queue()
        return self._call_queue
    async def identify(self) -> dict[str, Any]:
        """Manufacturer, model, revision, IMEI, IMSI, ICCID (what the modem answers; a
        command it refuses is left out), operator, SIM and registration: gammu's
        ``identify``. Raises :class:`ModemError` when the modem is not answering."""
        await self._started_or_offline()
        self._identity = await self._read_identity()
        if not self._identity:
            raise ModemError("the modem answered none of the identity commands", kind="offline")
        await self._poll_radio()  # fresh, not the last poll's (or none, just after a start)
        return {**self._identity, **self.radio()}

    def radio(self) -> dict[str, Any]:
        """Operator, registration, technology and signal as the last poll saw them."""
        return {"operator": self._operator, "sim": self._sim,
                "registered": any(r is not None and r.registered
                                  for r in (self._creg, self._cereg)),
                "roaming": any(r is not None and r.roaming for r in (self._creg, self._cereg)),
                "rat": _rat(self._creg, self._cereg), "rssi_dbm": self._rssi_dbm,
                "signal": signal_quality(self._rssi_dbm), "ber": self._ber}

    async def refresh(self) -> dict[str, Any]:
        """Poll SIM, registration, operator and signal now; then :meth:`radio`."""
        await self._started_or_offline()
        await self._poll_radio()
        return self.radio()

    async def inbox(self) -> list[dict[str, Any]]:
        """The messages on the SIM now (``AT+CMGL=4``), decoded, none deleted: each part
        with its index, sender, time stamp and text."""
        await self._started_or_offline()
        resp = await self._checked("AT+CMGL=4")
        out = []
        for index, stat, pdu in parse_cmgl(resp.lines):
            try:
                sms = decode_deliver(pdu)
            except PduError as exc:
                out.append({"index": index, "error": str(exc)})
                continue
            out.append({"index": index, "read": stat == 1, "from": sms.number,
                        "sent_at": sms.sent_at.isoformat() if sms.sent_at else None,
                        "text": sms.text,
                        "part": f"{sms.concat.seq}/{sms.concat.total}" if sms.concat else None})
        return out

    async def _read_identity(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, command, prefix in IDENTITY:
            if key in found:
                continue
            try:
                resp = await self._command(command)
            except ModemError:
                break  # not answering: the status says so
            value = _answer(resp, prefix) if resp.final.ok else None
            if value:
                found[key] = value
        return found

    async def _started_or_offline(self) -> None:
        if self._started.is_set():
            return
        timeout = self._settings.send_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await self._started.wait()
        except TimeoutError:
            self._counts["send_failures"] += 1
            reason = self._last_error or "starting up"
            raise ModemError(f"modem not ready after {timeout:g} s ({reason})",
                             kind="offline") from None

    def status(self) -> dict[str, Any]:
        """A JSON-able summary; ``state`` is ``trouble`` when SMS cannot go out."""
        registered = any(r is not None and r.registered for r in (self._creg, self._cereg))
        present = self._ready and self._failure is None
        # right after a start the first poll has not read the registration yet: say so,
        # rather than "not registered" (a technician would chase a fault that is not there)
        known = self._creg is not None or self._cereg is not None
        trouble = [
            reason
            for reason, bad in (
                ("modem not answering", not present),
                (f"SIM: {self._sim or 'unknown'}", present and known and self._sim != "READY"),
                ("not registered", present and known and not registered),
                ("last send failed", self._send_error is not None),
            )
            if bad
        ]
        return {
            "name": self._settings.name,
            "port": self._settings.port,
            "state": "trouble" if trouble else "ok",
            "trouble": trouble,
            "present": present,
            "sim": self._sim,
            "registered": registered,
            "registration_known": known,
            "roaming": any(r is not None and r.roaming for r in (self._creg, self._cereg)),
            "rat": _rat(self._creg, self._cereg),
            "creg": self._creg.stat if self._creg else None,
            "cereg": self._cereg.stat if self._cereg else None,
            "rssi_dbm": self._rssi_dbm,
            "operator": self._operator,
            "model": " ".join(v for k in ("manufacturer", "model")
                              if (v := (self._identity or {}).get(k))) or None,
            "last_error": self._send_error or self._last_error,
            **self._counts,
        }

    # -- a session ------------------------------------------------------------------------

    async def _serve(self, port: Any) -> bool:
        """One session, counted as a reopen; True (start the backoff over) only when the
        modem got as far as initialised."""
        try:
            return await self._session(port)
        finally:
            self._counts["reopens"] += 1

    def _open_failed(self, reason: str) -> None:
        self._trouble(reason)
        self._counts["reopens"] += 1

    async def _session(self, port: Any) -> bool:
        """Serve one opened port until it fails; True if it got as far as initialised."""
        self._attach(port.fileno())
        worker = asyncio.create_task(self._urc_worker())
        started = False
        try:
            await self._initialise()
            started = True
            await self._poll_loop()
        except asyncio.CancelledError:
            raise
        except (ModemError, AtError, OSError, serial.SerialException) as exc:
            self._trouble(str(exc))
        except Exception as exc:  # a bug must not stop the SMS path for good
            log.exception("event=modem_session_failed")
            self._trouble(f"internal error: {exc!r}")
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            self._detach()
            port.close()
        return started

    async def _initialise(self) -> None:
        for command in INIT:
            await self._checked(command)
        try:
            await self._checked(NEW_MESSAGE_INDICATION)
        except ModemError as exc:  # replies are still found by the AT+CMGL poll
            log.warning("event=modem_cnmi_refused error=%s", exc)
        self._ready = True
        self._last_error = None
        self._started.set()

    async def _poll_loop(self) -> None:
        while True:
            await self._poll()
            try:
                async with asyncio.timeout(self._settings.poll_s):
                    await self._failed.wait()
            except TimeoutError:
                continue
            raise ModemError(self._failure or "port failed", kind="offline")

    async def _poll(self) -> None:
        """SIM, registration, signal, operator, then any stored message; errors go to the
        status. The modem's identity is read once, after the first poll."""
        await self._poll_radio()
        if self._failure is not None:
            return
        if self._identity is None:
            self._identity = await self._read_identity()
        if self._settings.take_sms:
            await self._read_stored()
        for whole in self._joiner.expired(self._clock.monotonic()):
            await self._hand_over(whole)

    async def _poll_radio(self) -> None:
        for command, apply in (
            ("AT+CPIN?", self._apply_cpin),
            ("AT+CREG?", self._apply_registration),
            ("AT+CEREG?", self._apply_registration),
            ("AT+CSQ", self._apply_csq),
            ("AT+COPS?", self._apply_cops),
        ):
            try:
                apply(await self._command(command))
            except (ModemError, AtError) as exc:
                self._last_error = str(exc)
            if self._failure is not None:
                return

    def _apply_cops(self, resp: Response) -> None:
        line = _line(resp, "+COPS")
        fields = line.split(":", 1)[1].split(",") if resp.final.ok and line else []
        self._operator = fields[2].strip().strip('"') or None if len(fields) >= 3 else None

    def _apply_cpin(self, resp: Response) -> None:
        line = _line(resp, "+CPIN")
        self._sim = parse_cpin(line) if resp.final.ok and line else resp.final.text or "ERROR"

    def _apply_registration(self, resp: Response) -> None:
        name = "+CEREG" if resp.command.startswith("AT+CEREG") else "+CREG"
        line = _line(resp, name)
        reg = parse_registration(line) if resp.final.ok and line else None
        if name == "+CEREG":
            self._cereg = reg
        else:
            self._creg = reg

    def _apply_csq(self, resp: Response) -> None:
        line = _line(resp, "+CSQ")
        signal = parse_csq(line) if resp.final.ok and line else None
        self._rssi_dbm = signal.dbm if signal else None
        self._ber = signal.ber if signal and signal.ber != 99 else None

    # -- incoming -------------------------------------------------------------------------

    async def _urc_worker(self) -> None:
        while True:
            urc = await self._urcs.get()
            try:
                await self._on_urc(urc)
            except asyncio.CancelledError:
                raise
            except (ModemError, AtError) as exc:
                log.warning("event=modem_urc_failed urc=%r error=%s", urc.line, exc)
            except Exception:  # one bad URC must not stop incoming SMS for the session
                log.exception("event=modem_urc_failed urc=%r", urc.line)

    async def _on_urc(self, urc: Urc) -> None:
        if urc.name in ("+CMTI", "+CMT") and not self._settings.take_sms:
            log.info("event=sms_left_on_sim urc=%r", urc.line)
        elif urc.name == "+CMTI":
            _, index = parse_cmti(urc)
            resp = await self._command(f"AT+CMGR={index}")
            if resp.final.ok:  # not ok: already read and deleted by the AT+CMGL poll
                await self._incoming(index, parse_cmgr(resp.lines)[1])
        elif urc.name in ("+CREG", "+CEREG"):
            reg = parse_registration(urc.line, unsolicited=True)
            self._creg, self._cereg = (
                (reg, self._cereg) if urc.name == "+CREG" else (self._creg, reg)
            )
        elif urc.name == "+CMT" and urc.pdu:
            await self._incoming(-1, urc.pdu)
        else:
            log.debug("event=modem_urc line=%r", urc.line)

    async def _read_stored(self) -> None:
        resp = await self._command("AT+CMGL=4")
        if resp.final.ok:
            for index, _, pdu in parse_cmgl(resp.lines):
                await self._incoming(index, pdu)

    async def _incoming(self, index: int, pdu: str) -> None:
        if index >= 0 and index in self._in_hand:
            return
        if index >= 0:
            self._in_hand.add(index)
        try:
            await self._take(index, pdu)
        finally:
            self._in_hand.discard(index)

    async def _take(self, index: int, pdu: str) -> None:
        try:
            sms = decode_deliver(pdu)
        except PduError as exc:
            log.warning("event=sms_undecodable index=%s error=%s", index, exc)
            await self._delete([index])
            return
        whole = self._joiner.add(sms, self._clock.monotonic(), token=index)
        if whole is not None:
            await self._hand_over(whole)

    async def _hand_over(self, whole: Assembled) -> None:
        """Give the message to ``on_sms``; delete it from the SIM only once that returned,
        so a failing handler sees it again at the next poll."""
        sender, numeric = whole.number, whole.numeric
        if numeric:  # an alphanumeric name (even "0912…") is never read as a number
            try:
                sender = normalize_number(whole.number, self._settings.country_code)
            except PduError:
                numeric = False
        self._counts["received"] += 1
        if self._on_sms is not None:
            try:
                result = self._on_sms(sender, whole.text, self._clock.wall(), numeric=numeric)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=sms_handler_failed sender=%s", sender)
                return
        await self._delete(list(whole.tokens))

    async def _delete(self, indices: list[int]) -> None:
        for index in (i for i in indices if i >= 0):
            await self._command(f"AT+CMGD={index}")

    # -- commands on the line -----------------------------------------------------------

    async def _checked(self, command: str) -> Response:
        resp = await self._command(command)
        if not resp.final.ok:
            raise resp.final.error(command)
        return resp

    async def _command(self, command: str) -> Response:
        async with self._lock:
            return await self._transact(command, self._settings.command_timeout_s)

    async def _submit(self, length: int, pdu: str) -> int:
        """One ``AT+CMGS`` exchange (the caller holds the lock); the part's reference."""
        command = f"AT+CMGS={length}"
        resp = await self._transact(command, self._settings.send_timeout_s, pdu=pdu)
        if not resp.final.ok:
            raise resp.final.error(command)
        line = _line(resp, "+CMGS")
        if line is None:
            raise ModemError(f"{command}: OK without +CMGS")
        return parse_cmgs(line)

    async def _transact(self, command: str, timeout: float, pdu: str | None = None) -> Response:
        if self._failure is not None or self._fd is None or self._loop is None:
            raise ModemError(f"{command}: modem offline ({self._failure})", kind="offline")
        exchange = self._exchange = _Exchange(self._loop)
        self._parser.begin(command)
        try:
            await self._write(command.encode() + b"\r")
            if pdu is not None:
                await self._wait_prompt(command, exchange)
                if exchange.response.done():
                    return exchange.response.result()  # refused before the prompt
                await self._write(pdu.encode() + b"\x1a")
            try:
                async with asyncio.timeout(timeout):
                    return await exchange.response
            except TimeoutError:
                raise self._timed_out(command, timeout) from None
        finally:
            self._exchange = None
            self._parser.abandon()

    async def _wait_prompt(self, command: str, exchange: _Exchange) -> None:
        timeout = self._settings.command_timeout_s
        waiting: set[asyncio.Future[Any]] = {exchange.prompt, exchange.response}
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not exchange.prompt.done() and not exchange.response.done():
            await self._write(b"\x1b")  # abort, should the prompt come late
            raise self._timed_out(command + " (prompt)", timeout)

    def _timed_out(self, command: str, timeout: float) -> ModemError:
        self._timeouts += 1
        error = ModemError(f"{command}: no answer in {timeout:g} s", kind="timeout")
        if self._timeouts >= self._settings.silent_after:
            self._fail(f"modem silent: {error}")
        return error

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._fd is None or self._loop is None:
                raise ModemError("modem offline", kind="offline")
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:
                await self._writable(self._fd, self._loop)
            except OSError as exc:
                self._fail(f"{self._settings.port}: {exc}")
                raise ModemError(f"write failed: {exc}", kind="offline") from exc

    async def _writable(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, wake)
        try:
            async with asyncio.timeout(self._settings.command_timeout_s):
                await ready
        finally:
            loop.remove_writer(fd)

    # -- the port ---------------------------------------------------------------------

    def _attach(self, fd: int) -> None:
        assert self._loop is not None
        os.set_blocking(fd, False)
        self._fd, self._failure, self._timeouts = fd, None, 0
        self._failed = asyncio.Event()
        self._urcs = asyncio.Queue()
        self._parser.reset()
        self._loop.add_reader(fd, self._on_readable)

    def _detach(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._fd, self._ready = None, False
        self._started.clear()
        self._sim = self._creg = self._cereg = self._rssi_dbm = None  # unknown, not stale

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            return self._fail(f"{self._settings.port}: {exc}")
        if not data:
            return self._fail(f"{self._settings.port}: closed")
        for event in self._parser.feed(data):
            self._dispatch(event)

    def _dispatch(self, event: Response | Prompt | Urc) -> None:
        exchange = self._exchange
        if isinstance(event, Urc) and event.name in CALL_URCS and self._call_queue is not None:
            self._call_queue.put_nowait(event)  # the call reads it now, not behind a +CMGR
        elif isinstance(event, Urc):
            self._urcs.put_nowait(event)
        elif exchange is None:
            return
        elif isinstance(event, Prompt) and not exchange.prompt.done():
            exchange.prompt.set_result(None)
        elif isinstance(event, Response) and not exchange.response.done():
            self._timeouts = 0
            exchange.response.set_result(event)

    def _fail(self, reason: str) -> None:
        """End the session: stop reading, fail the command on the line, wake the poller."""
        if self._failure is None:
            self._failure = reason
            self._started.clear()
            if self._fd is not None and self._loop is not None:
                self._loop.remove_reader(self._fd)
            exchange = self._exchange
            if exchange is not None and not exchange.response.done():
                exchange.response.set_exception(ModemError(reason, kind="offline"))
                exchange.response.exception()  # retrieved: the waiter may be gone already
            self._failed.set()

    def _trouble(self, reason: str) -> None:
        if reason != self._last_error:
            log.warning("event=modem_trouble port=%s reason=%s", self._settings.port, reason)
        self._last_error = reason

    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) % 256
        return self._ref


def _line(resp: Response, prefix: str) -> str | None:
    """The answer line starting with ``prefix`` (the echo and blank lines are gone)."""
    return next((ln for ln in resp.lines if ln.upper().startswith(prefix + ":")), None)


def _answer(resp: Response, prefix: str | None) -> str | None:
    """The value of an identity answer: the line after ``prefix:``, or the first line
    (some modems prefix ``+CGSN:`` or ``+CGMM:`` anyway), quotes dropped."""
    line = _line(resp, prefix) if prefix else next((ln for ln in resp.lines if ln.strip()), None)
    if line is None:
        return None
    if line.startswith("+") and ":" in line:
        line = line.split(":", 1)[1]
    return line.strip().strip('"').strip() or None


def signal_quality(dbm: int | None) -> str | None:
    """A word for the signal, as a technician says it (the usual LTE RSSI bands)."""
    if dbm is None:
        return None
    for limit, word in ((-70, "excellent"), (-85, "good"), (-100, "fair")):
        if dbm >= limit:
            return word
    return "poor"


def _rat(creg: Registration | None, cereg: Registration | None) -> str | None:
    """Which network SMS would use: LTE (``+CEREG``) or 2G/3G circuit (``+CREG``)."""
    if cereg is not None and cereg.registered:
        return "lte"
    if creg is not None and creg.registered:
        return "2g3g" if creg.act is None or creg.act < 7 else "lte"
    return None
