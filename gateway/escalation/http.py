"""The HTTP escalation channel: a signed POST to the police hotline, retried (SPEC §4).

``requests`` is blocking, so each attempt runs in a worker thread of the channel's own
pool (:data:`WORKERS` threads, never asyncio's default pool, which a flood of console logins
or any other part of the gateway could fill and so delay the police) with its own session; the retry loop, the clock, the backoff sleeps and the attempt
reports stay on the event loop. Cancelling :meth:`HttpChannel.deliver` returns at once;
an attempt already in flight finishes (bounded by its time-outs) in its thread and is
ignored. Rationale and the receiver's side: ``docs/escalation-http.md``.
"""

from __future__ import annotations

import asyncio
import http.client
import inspect
import logging
import random
import ssl
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import requests.certs
import urllib3
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from gateway.core.clock import SystemClock, rfc3339
from gateway.core.ports import Clock
from gateway.core.redact import redact_text, redact_url
from gateway.escalation.wire import (
    AttemptCallback,
    AttemptOutcome,
    DeliveryResult,
    EscalationRequest,
    RetryPolicy,
    Stop,
    StopReason,
    Verdict,
    parse_retry_after,
    signed_headers,
)

log = logging.getLogger(__name__)

USER_AGENT = "ward-alarm-gateway/0.1"
WORKERS = 8  # threads for POSTs in flight at once (a mass alarm's rounds, slow answers)


class _ContextAdapter(HTTPAdapter):
    """Hands urllib3 our own ``SSLContext`` and keeps requests from adding certifi to it."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.ca_certs = None
        conn.ca_cert_dir = None
        conn.cert_reqs = "CERT_NONE" if self._context.verify_mode == ssl.CERT_NONE else (
            "CERT_REQUIRED"
        )


class HttpChannel:
    """Delivers :class:`EscalationRequest`s to one hotline URL (``drill_url`` for drills).

    ``secret`` keys the HMAC signature. TLS is verified against the system CAs, or only
    ``ca_file`` when given; ``insecure`` turns verification off and is logged as such.
    Time-outs are seconds per connect and per read. ``clock``, ``sleep`` and ``rand`` are
    injected so tests run the backoff without waiting.
    """

    name = "http"

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        drill_url: str | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        max_excerpt_bytes: int = 512,
    ) -> None:
        self.url = url
        self.drill_url = drill_url
        self._secret = secret
        self.ca_file = ca_file
        self.insecure = insecure
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.policy = policy or RetryPolicy()
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep
        self._rand = rand
        self.max_excerpt_bytes = max_excerpt_bytes
        self._context: ssl.SSLContext | None = None
        self._context_lock = threading.Lock()
        self._warned = False
        self._state: dict[str, Any] = {"consecutive_failures": 0, "last": None, "delivered_at": None}
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="hotline")

    @classmethod
    def from_config(
        cls, cfg: Any, secret: str | bytes, *, ca_file: str | Path | None = None,
        **kwargs: Any,
    ) -> HttpChannel:
        """From ``[escalation.http]`` (``gateway.config.schema.HttpChannel``), the secret file's
        text and ``ca_file`` as the config resolved it (``SiteConfig.resolve``: the one place
        a relative path is made absolute, so ``run`` and ``check-config`` read one file)."""
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        kwargs.setdefault("policy", RetryPolicy(max_attempts=cfg.max_attempts))
        return cls(
            cfg.url,
            key,
            drill_url=cfg.drill_url,
            ca_file=str(ca_file) if ca_file is not None else None,
            insecure=cfg.insecure,
            connect_timeout_s=min(cfg.timeout_s, 10.0),
            read_timeout_s=cfg.timeout_s,
            **kwargs,
        )

    def health(self) -> dict[str, Any]:
        """For ``gateway/health``: TLS mode, last answer, failures in a row, last delivery."""
        tls = "insecure" if self.insecure else ("ca_file" if self.ca_file else "system")
        return {"url": redact_url(self.url), "tls": tls, **self._state}

    def url_for(self, request: EscalationRequest) -> str:
        return self.drill_url if request.drill and self.drill_url else self.url

    async def deliver(
        self,
        request: EscalationRequest,
        *,
        on_attempt: AttemptCallback | None = None,
        deadline_s: float | None = None,
    ) -> DeliveryResult:
        """POST until a 2xx, a permanent refusal, the attempt limit or ``deadline_s``.

        ``deadline_s`` (seconds from now, on the injected clock) serves the ``fallback``
        policy: "not succeeded within N s". Every attempt signs afresh with the current
        time but keeps ``Idempotency-Key: <escalation_id>``.
        """
        self._warn_once()
        body, url = request.to_body(), self.url_for(request)
        started = self._clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline_s is None else deadline_s - self._elapsed(started)
            outcome = await self._attempt_async(url, body, request.escalation_id, remaining)
            if outcome.verdict is not Verdict.RETRY:
                await _report(on_attempt, attempt, outcome.label, will_retry=False, delay_s=0.0)
                return self._finish(outcome, attempt)
            retry_after = parse_retry_after(outcome.retry_after, self._clock.wall())
            delay = self.policy.delay_s(attempt, retry_after, self._rand())
            stop = self.policy.stop(attempt, elapsed_s=self._elapsed(started), delay_s=delay,
                                    deadline_s=deadline_s)
            await _report(on_attempt, attempt, outcome.label, will_retry=stop is None,
                          delay_s=0.0 if stop else delay)
            if stop is not None:
                return self._give_up(outcome, attempt, stop)
            await self._sleep(delay)

    async def _attempt_async(
        self, url: str, body: bytes, key: str, remaining_s: float | None
    ) -> AttemptOutcome:
        headers = signed_headers(self._secret, key, body, int(self._clock.wall()))
        headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        floor = 0.05  # seconds: an attempt at the deadline still gets a brief chance
        connect, read = self.connect_timeout_s, self.read_timeout_s
        if remaining_s is not None:
            connect, read = max(min(connect, remaining_s), floor), max(min(read, remaining_s), floor)
        outcome = await asyncio.get_running_loop().run_in_executor(
            self._pool, self.attempt, url, body, headers, (connect, read))
        log.info("hotline POST %s key=%s -> %s", redact_url(url), key, outcome.label)
        return outcome

    def attempt(
        self, url: str, body: bytes, headers: dict[str, str], timeout: tuple[float, float]
    ) -> AttemptOutcome:
        """One blocking POST (runs in a worker thread). Never raises for network trouble."""
        try:
            context = self._ssl_context()
        except (OSError, ValueError) as exc:
            where = f"cannot load CA file {self.ca_file}: " if self.ca_file else ""
            return AttemptOutcome(None, f"tls: {where}{_describe('', exc)[2:]}")
        return post_once(url, body, headers, context, timeout, self.max_excerpt_bytes)

    def _ssl_context(self) -> ssl.SSLContext:
        with self._context_lock:
            if self._context is None:
                self._context = build_ssl_context(self.ca_file, insecure=self.insecure)
            return self._context

    def _elapsed(self, started: float) -> float:
        return self._clock.monotonic() - started

    def _finish(self, outcome: AttemptOutcome, attempt: int) -> DeliveryResult:
        status = outcome.status
        if outcome.verdict is Verdict.DELIVERED:
            at = rfc3339(self._clock.wall())
            self._state.update(consecutive_failures=0, last=status, delivered_at=at)
            return DeliveryResult(delivered=True, permanent_failure=False, status=status,
                                  attempts=attempt, detail=f"HTTP {status}", delivered_at=at)
        self._note_failure(outcome)
        detail = f"HTTP {status} refused: {outcome.excerpt}".rstrip(": ")
        return DeliveryResult(delivered=False, permanent_failure=True, status=status,
                              attempts=attempt, detail=detail)

    def _give_up(self, outcome: AttemptOutcome, attempt: int, stop: Stop) -> DeliveryResult:
        self._note_failure(outcome)
        last = f"HTTP {outcome.status}" if outcome.status is not None else str(outcome.error)
        return DeliveryResult(delivered=False, permanent_failure=False, status=outcome.status,
                              attempts=attempt, detail=f"{stop.text}; last: {last}",
                              deadline_exceeded=stop.reason is StopReason.LATE)

    def _note_failure(self, outcome: AttemptOutcome) -> None:
        failures = int(self._state["consecutive_failures"]) + 1
        self._state.update(consecutive_failures=failures, last=outcome.label)

    def _warn_once(self) -> None:
        if self._warned:
            return
        self._warned = True
        if self.insecure:
            log.warning("hotline TLS verification is OFF (insecure = true): lab use only")
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if self.url.startswith("http://"):
            log.warning("hotline URL %s is plain HTTP: alarms travel unencrypted",
                        redact_url(self.url))


async def _report(
    callback: AttemptCallback | None, attempt: int, label: int | str, *, will_retry: bool,
    delay_s: float,
) -> None:
    if callback is None:
        return
    # an exception the callback raises is not caught: it ends deliver() and propagates
    result = callback(attempt, label, will_retry=will_retry, delay_s=delay_s)
    if inspect.isawaitable(result):
        await result


def build_ssl_context(ca_file: str | None, *, insecure: bool) -> ssl.SSLContext:
    """Client context: ``ca_file`` only, else the system's CAs (certifi if it has none).

    ``insecure`` disables verification entirely (an explicit lab option).
    """
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    if not context.get_ca_certs() and not ssl.get_default_verify_paths().capath:
        context.load_verify_locations(requests.certs.where())
    return context


def post_once(
    url: str,
    body: bytes,
    headers: dict[str, str],
    context: ssl.SSLContext,
    timeout: tuple[float, float],
    max_excerpt: int = 512,
) -> AttemptOutcome:
    """One POST with a fresh session; maps every network failure to an outcome.

    The body of a non-2xx answer is read only up to ``max_excerpt`` bytes, so a hostile
    or broken server cannot fill the memory; redirects are not followed.
    """
    try:
        with requests.Session() as session:
            session.trust_env = False  # no .netrc credentials or env proxies on an alarm
            session.mount("https://", _ContextAdapter(context))
            session.mount("http://", HTTPAdapter(max_retries=0))
            with session.post(
                url, data=body, headers=headers, timeout=timeout, stream=True,
                allow_redirects=False,
            ) as resp:
                ok = 200 <= resp.status_code < 300
                excerpt = "" if ok else _read_excerpt(resp, max_excerpt)
                return AttemptOutcome(resp.status_code, None, resp.headers.get("Retry-After"),
                                      excerpt)
    except requests.exceptions.SSLError as exc:
        return AttemptOutcome(None, _describe("tls", exc))
    except requests.exceptions.Timeout as exc:
        return AttemptOutcome(None, _describe("timeout", exc))
    except requests.exceptions.ConnectionError as exc:
        return AttemptOutcome(None, _describe(_connection_kind(exc), exc))
    except (requests.RequestException, http.client.HTTPException, OSError, ValueError) as exc:
        return AttemptOutcome(None, _describe("protocol", exc))


def _read_excerpt(resp: requests.Response, limit: int) -> str:
    data = b""
    try:
        for chunk in resp.iter_content(chunk_size=min(limit, 4096) or 1):
            data += chunk
            if len(data) >= limit:
                break
    except (requests.RequestException, http.client.HTTPException, OSError, ValueError):
        pass
    return _one_line(data[:limit].decode("utf-8", errors="replace"))


def _connection_kind(exc: BaseException) -> str:
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, urllib3.exceptions.ProtocolError) and len(inner.args) > 1:
        cause = inner.args[1]
        if isinstance(cause, http.client.HTTPException) and not isinstance(
            cause, http.client.RemoteDisconnected
        ):
            return "protocol"
    return "connection"


def _describe(kind: str, exc: BaseException) -> str:
    root = _root_cause(exc)
    return f"{kind}: {_one_line(redact_text(f'{type(root).__name__}: {root}'))}"


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error under requests' and urllib3's wrappers (bounded walk)."""
    for _ in range(8):
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if inner is None or inner is exc:
            return exc
        exc = inner
    return exc


def _one_line(text: str, limit: int = 200) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
