"""A simulated police hotline: the HTTP receiver of SPEC §4, with fault controls.

It checks what the real desk would check (the HMAC signature with the shared secret, the
timestamp skew, the JSON body against the contract) and records every request. The
``deliveries()`` view shows each ``Idempotency-Key`` once, as the desk would. Faults are
queued and consumed one request at a time: ``fail(500, times=3)``, ``rate_limit("7")``,
``reject(400)``, ``hang()``, ``garbage()``, ``huge()``.

It runs in background threads (stdlib ``ThreadingHTTPServer``), so sync tests, asyncio
code and the demo use it alike; every method is thread-safe.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.escalation.wire import EscalationRequest, verify_signature

log = logging.getLogger(__name__)

GARBAGE = b"\x00\xff\xfeTHIS IS NOT HTTP \x1b[31m\r\n\x00\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the hotline saw it. ``headers`` keys are lower case; ``answer`` is
    the status sent, or ``"hang"`` / ``"garbage"``; ``problem`` says why it was refused."""

    n: int
    at: float
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any] | None
    idempotency_key: str | None
    signature_ok: bool
    problem: str | None
    answer: int | str

    @property
    def accepted(self) -> bool:
        return isinstance(self.answer, int) and 200 <= self.answer < 300


@dataclass(slots=True)
class _Fault:
    kind: str  # "status", "hang", "garbage"
    status: int = 500
    retry_after: str | None = None
    size: int = 0  # bytes of body to send with a "status" fault
    remaining: int | None = 1  # None: until cleared


@dataclass(slots=True)
class _State:
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(init=False)
    faults: deque[_Fault] = field(default_factory=deque)
    records: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class HotlineServer:
    """The simulated hotline on ``host:port`` (port 0: a free one), HTTPS if ``ssl_context``.

    ``secret`` is the shared HMAC key; ``max_skew_s`` the accepted clock difference
    (seconds); ``now`` gives unix seconds. ``on_delivery`` is called (in a server thread)
    the first time each ``Idempotency-Key`` is accepted.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        max_skew_s: float = 300.0,
        now: Callable[[], float] = time.time,
        max_body_bytes: int = 1 << 20,
        on_delivery: Callable[[Received], None] | None = None,
        hang_max_s: float = 120.0,
    ) -> None:
        self.secret = secret
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_skew_s = max_skew_s
        self.now = now
        self.max_body_bytes = max_body_bytes
        self.on_delivery = on_delivery
        self.hang_max_s = hang_max_s
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> HotlineServer:
        """Bind and serve in a daemon thread; after :meth:`stop` it restarts on the same port."""
        if self._server is not None:
            return self
        self._state.release = threading.Event()
        server = _Server((self.host, self.port), _Handler)
        server.hotline = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name=f"hotline:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (connections are refused afterwards) and release hung requests."""
        server, self._server = self._server, None
        self._state.release.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}/alarm"

    def __enter__(self) -> HotlineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> HotlineServer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    # -- fault controls ---------------------------------------------------------------
    def fail(self, status: int = 500, times: int | None = 1, *, retry_after: str | None = None,
             size: int = 0) -> None:
        """Answer the next ``times`` requests (None: all, until cleared) with ``status``."""
        self._queue(_Fault("status", status, retry_after, size, times))

    def rate_limit(self, retry_after: str = "5", times: int | None = 1) -> None:
        """429 with ``Retry-After`` (seconds, or an HTTP-date)."""
        self.fail(429, times, retry_after=retry_after)

    def reject(self, status: int = 400, times: int | None = 1) -> None:
        self.fail(status, times)

    def hang(self, times: int | None = 1) -> None:
        """Read the request, then never answer until :meth:`release` or :meth:`stop`."""
        self._queue(_Fault("hang", remaining=times))

    def garbage(self, times: int | None = 1) -> None:
        """Answer with bytes that are not HTTP at all."""
        self._queue(_Fault("garbage", remaining=times))

    def huge(self, status: int = 500, size: int = 8 << 20, times: int | None = 1) -> None:
        """Answer ``status`` with a ``size``-byte body (a hostile or broken server)."""
        self.fail(status, times, size=size)

    def release(self) -> None:
        """Let hung requests go (their connections close without an answer)."""
        with self._state.lock:
            self._state.release.set()
            self._state.release = threading.Event()

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def _queue(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            return
        with self._state.lock:
            self._state.faults.append(fault)

    def _take_fault(self) -> _Fault | None:
        with self._state.lock:
            faults = self._state.faults
            if not faults:
                return None
            fault = faults[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    faults.popleft()
            return fault

    # -- records ----------------------------------------------------------------------
    def requests(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._state.lock:
            return list(self._state.records)

    def deliveries(self) -> list[Received]:
        """Accepted requests, one per ``Idempotency-Key`` (the first): what the desk shows."""
        seen: set[str | None] = set()
        out = []
        for record in self.requests():
            if record.accepted and record.idempotency_key not in seen:
                seen.add(record.idempotency_key)
                out.append(record)
        return out

    def wait_for(self, predicate: Callable[[HotlineServer], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every request) or ``timeout``
        seconds pass; returns whether it held."""
        with self._state.changed:
            return self._state.changed.wait_for(lambda: predicate(self), timeout)

    def _record(self, **fields: Any) -> Received:
        with self._state.changed:
            first = not any(r.accepted and r.idempotency_key == fields["idempotency_key"]
                            for r in self._state.records)
            record = Received(n=len(self._state.records) + 1, at=self.now(), **fields)
            self._state.records.append(record)
            self._state.changed.notify_all()
        if record.accepted and first and self.on_delivery is not None:
            self.on_delivery(record)
        return record

    def _check(self, headers: dict[str, str], raw: bytes) -> tuple[bool, str | None, Any]:
        """``(signature_ok, problem, parsed_body)`` for one request."""
        problem = verify_signature(self.secret, headers.get("x-alarm-timestamp"),
                                   headers.get("x-alarm-signature"), raw, self.now(),
                                   self.max_skew_s)
        signature_ok = problem is None
        try:
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except (UnicodeDecodeError, ValueError) as exc:
            return signature_ok, problem or f"bad JSON: {exc}", None
        if problem is None:
            problem = _contract_problem(body, headers)
        return signature_ok, problem, body

    def _hang_event(self) -> threading.Event:
        with self._state.lock:
            return self._state.release


def _contract_problem(body: dict[str, Any], headers: dict[str, str]) -> str | None:
    if not headers.get("content-type", "").startswith("application/json"):
        return "Content-Type is not application/json"
    try:
        request = EscalationRequest.from_dict(body)
    except (KeyError, TypeError, ValueError) as exc:
        return f"body does not follow the contract: {type(exc).__name__}: {exc}"
    if headers.get("idempotency-key") != request.escalation_id:
        return "Idempotency-Key differs from escalation_id"
    return None


def _status_for(problem: str | None) -> int:
    """The answer a real desk would give: 200, or why it refuses."""
    if problem is None:
        return 200
    if "Content-Length" in problem:
        return 411
    if problem.startswith("body of"):
        return 413
    if "signature" in problem.lower() or "timestamp" in problem.lower():
        return 401
    return 400 if problem.startswith("bad JSON") else 422


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hotline: HotlineServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.hotline.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10.0)  # seconds for the handshake; a silent client cannot pin us
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("hotline TLS handshake from %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("hotline: connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30.0  # seconds a client may take to send its request

    def do_POST(self) -> None:
        hotline = self.server.hotline
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw, problem = self._read_body(hotline.max_body_bytes)
        fault = hotline._take_fault()
        signature_ok, check_problem, body = hotline._check(headers, raw)
        problem = problem or check_problem
        answer = self._answer(fault, problem, hotline)
        hotline._record(path=self.path, headers=headers, raw=raw, body=body,
                        idempotency_key=headers.get("idempotency-key"),
                        signature_ok=signature_ok, problem=problem, answer=answer)
        self._finish_answer(answer, fault, hotline)

    def _read_body(self, limit: int) -> tuple[bytes, str | None]:
        length = self.headers.get("Content-Length", "")
        if not length.isascii() or not length.isdigit():
            return b"", "missing or bad Content-Length"
        if int(length) > limit:
            return b"", f"body of {length} bytes exceeds {limit}"
        return self.rfile.read(int(length)), None

    def _answer(self, fault: _Fault | None, problem: str | None, hotline: HotlineServer) -> Any:
        if fault is not None and fault.kind != "status":
            return fault.kind
        if fault is not None:
            return fault.status
        return _status_for(problem)

    def _finish_answer(self, answer: int | str, fault: _Fault | None,
                       hotline: HotlineServer) -> None:
        try:
            if answer == "hang":
                hotline._hang_event().wait(hotline.hang_max_s)
                self.close_connection = True
            elif answer == "garbage":
                self.wfile.write(GARBAGE)
            else:
                assert isinstance(answer, int)
                self._send(answer, fault)
        except (OSError, ssl.SSLError):
            pass  # the client went away: that is its business

    def _send(self, status: int, fault: _Fault | None) -> None:
        size = fault.size if fault is not None else 0
        payload = b"" if size else json.dumps({"status": status}).encode()
        self.send_response(status)
        if fault is not None and fault.retry_after is not None:
            self.send_header("Retry-After", fault.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size or len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        block = b"x" * 65536
        sent = 0
        while sent < size:
            self.wfile.write(block[: size - sent])
            sent += len(block)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("hotline: " + format, *args)


__all__ = ["GARBAGE", "HotlineServer", "Received"]
