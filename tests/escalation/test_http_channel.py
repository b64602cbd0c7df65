"""The HTTP escalation channel against the real simulated hotline on 127.0.0.1.

Backoff sleeps are injected (they advance a manual clock and return at once), so retries
cost no wall time; the only real waits are bounded socket time-outs and ``wait_for``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import ssl
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.clock import ManualClock
from gateway.escalation.http import HttpChannel
from gateway.escalation.wire import (
    DeliveryResult,
    EscalationRequest,
    RetryPolicy,
    SiteInfo,
    WardInfo,
    classify_status,
    parse_retry_after,
    sign,
    verify_signature,
)
from simulator.hotline import HotlineServer

SECRET = b"shared-hotline-secret"
SPEC_KEYS = [
    "escalation_id", "alarm_id", "code", "type", "drill", "site", "ward", "room", "device",
    "raised_at", "escalated_at", "press_count", "acknowledged_locally", "message", "message_en",
]
RUN_LIMIT_S = 30.0  # no single delivery in these tests may take longer


def make_request(**changes: Any) -> EscalationRequest:
    fields: dict[str, Any] = {
        "escalation_id": "esc-7d2f", "alarm_id": "alm-91c0", "code": "0427", "type": "panic",
        "drill": False,
        "site": SiteInfo("bvbm", "Bệnh viện Bạch Mai", "78 Giải Phóng, Hà Nội", "+842438693731"),
        "ward": WardInfo("emergency", "Khoa Cấp cứu"), "room": "105", "device": "btn-105",
        "raised_at": "2026-11-23T19:42:05.123Z", "escalated_at": "2026-11-23T19:42:06.001Z",
        "press_count": 2, "acknowledged_locally": False,
        "message": "Báo động khẩn cấp: Bệnh viện Bạch Mai", "message_en": "Panic alarm",
    }
    fields.update(changes)
    return EscalationRequest(**fields)


class Harness:
    """A channel whose sleeps advance a manual clock (near real time, for the skew check)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.clock = ManualClock(wall_start=time.time())
        self.sleeps: list[float] = []
        self.attempts: list[tuple[int, int | str, bool, float]] = []
        kwargs.setdefault("read_timeout_s", 5.0)
        kwargs.setdefault("policy", RetryPolicy(max_attempts=6))
        self.channel = HttpChannel(url, kwargs.pop("secret", SECRET), clock=self.clock,
                                   sleep=self._sleep, rand=lambda: 0.5, **kwargs)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def _on_attempt(self, n: int, label: int | str, *, will_retry: bool, delay_s: float) -> None:
        self.attempts.append((n, label, will_retry, delay_s))

    def deliver(self, request: EscalationRequest | None = None, **kw: Any) -> DeliveryResult:
        coro = self.channel.deliver(request or make_request(), on_attempt=self._on_attempt, **kw)
        return asyncio.run(asyncio.wait_for(coro, RUN_LIMIT_S))


@pytest.fixture
def hotline():
    with HotlineServer(SECRET) as server:
        yield server


def test_delivered_on_200_with_a_valid_signature_and_the_spec_body(hotline):
    h = Harness(hotline.url)
    request = make_request()
    result = h.deliver(request)
    assert (result.delivered, result.permanent_failure, result.status) == (True, False, 200)
    assert result.attempts == 1 and result.delivered_at is not None
    assert h.attempts == [(1, 200, False, 0.0)]
    [got] = hotline.requests()
    assert got.signature_ok and got.problem is None and got.answer == 200
    assert got.headers["idempotency-key"] == "esc-7d2f"
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    ts = got.headers["x-alarm-timestamp"]
    assert ts == str(int(h.clock.wall()))
    expected = hmac.new(SECRET, ts.encode() + b"." + got.raw, hashlib.sha256).hexdigest()
    assert got.headers["x-alarm-signature"] == "sha256=" + expected
    assert got.raw == request.to_body()
    assert "Khoa Cấp cứu".encode() in got.raw  # UTF-8, not \u escapes
    assert list(json.loads(got.raw)) == SPEC_KEYS
    assert got.body == {
        **request.to_dict(),
        "site": {"id": "bvbm", "name": "Bệnh viện Bạch Mai", "address": "78 Giải Phóng, Hà Nội",
                 "phone": "+842438693731"},
        "ward": {"id": "emergency", "name": "Khoa Cấp cứu"},
    }
    assert [d.n for d in hotline.deliveries()] == [1]


def test_500_three_times_then_200_is_one_delivery_with_one_key(hotline):
    hotline.fail(500, times=3)
    h = Harness(hotline.url, policy=RetryPolicy(base_s=2.0))  # >= 1 s apart: fresh stamps
    result = h.deliver()
    assert result.delivered and result.attempts == 4
    assert [(n, label, retry) for n, label, retry, _ in h.attempts] == [
        (1, 500, True), (2, 500, True), (3, 500, True), (4, 200, False)]
    assert h.sleeps == [a[3] for a in h.attempts[:3]] == [1.5, 3.0, 6.0]
    got = hotline.requests()
    assert [r.answer for r in got] == [500, 500, 500, 200]
    assert {r.idempotency_key for r in got} == {"esc-7d2f"}
    assert all(r.signature_ok for r in got)
    stamps = [int(r.headers["x-alarm-timestamp"]) for r in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # re-signed each time
    assert len({r.headers["x-alarm-signature"] for r in got}) == 4
    assert len(hotline.deliveries()) == 1


def test_429_retry_after_seconds_is_honoured(hotline):
    hotline.rate_limit(retry_after="7")
    h = Harness(hotline.url)
    result = h.deliver()
    assert result.delivered and result.attempts == 2
    assert h.sleeps == [7.0]
    assert h.attempts[0] == (1, 429, True, 7.0)


def test_429_retry_after_http_date_is_honoured(hotline):
    h = Harness(hotline.url)
    when = datetime.fromtimestamp(int(h.clock.wall()) + 30, tz=UTC)
    hotline.rate_limit(retry_after=format_datetime(when, usegmt=True))
    assert h.deliver().delivered
    [delay] = h.sleeps
    assert 29.0 <= delay <= 30.0


def test_400_is_a_permanent_failure_without_retry(hotline):
    hotline.reject(400)
    h = Harness(hotline.url)
    result = h.deliver()
    assert (result.delivered, result.permanent_failure, result.status) == (False, True, 400)
    assert result.attempts == 1 and h.sleeps == []
    assert h.attempts == [(1, 400, False, 0.0)]
    assert "400" in result.detail
    assert len(hotline.requests()) == 1 and hotline.deliveries() == []


def test_a_wrong_secret_is_refused_by_the_hotline_and_not_retried(hotline):
    h = Harness(hotline.url, secret=b"not-the-secret")
    result = h.deliver()
    assert result.permanent_failure and result.status == 401
    [got] = hotline.requests()
    assert not got.signature_ok and "signature" in (got.problem or "").lower()


def test_a_hanging_hotline_times_out_and_is_retried(hotline):
    hotline.hang()
    h = Harness(hotline.url, read_timeout_s=0.5)
    result = h.deliver()
    assert result.delivered and result.attempts >= 2  # == 2 unless the machine is very slow
    assert str(h.attempts[0][1]).startswith("timeout:") and h.attempts[0][2] is True
    answers = [r.answer for r in hotline.requests()]
    assert answers[0] == "hang" and answers[-1] == 200
    assert len(hotline.deliveries()) == 1


def test_garbage_and_a_huge_answer_are_survived_and_reported(hotline):
    hotline.garbage()
    hotline.huge(status=500, size=8 << 20)
    h = Harness(hotline.url)
    result = h.deliver()
    assert result.delivered and result.attempts == 3
    assert str(h.attempts[0][1]).startswith("protocol:")
    assert h.attempts[1][:3] == (2, 500, True)


def test_a_huge_refusal_is_read_only_in_part(hotline):
    hotline.huge(status=400, size=8 << 20)
    result = Harness(hotline.url).deliver()
    assert result.permanent_failure and result.status == 400
    assert len(result.detail) < 300


def test_attempts_run_out_without_a_permanent_failure(hotline):
    hotline.garbage(times=None)
    h = Harness(hotline.url, policy=RetryPolicy(max_attempts=3))
    result = h.deliver()
    assert not result.delivered and not result.permanent_failure and result.attempts == 3
    assert [a[2] for a in h.attempts] == [True, True, False]
    assert "protocol" in result.detail and h.channel.health()["consecutive_failures"] == 1


def test_the_deadline_ends_delivery_for_the_fallback_policy(hotline):
    hotline.fail(503, times=None)
    h = Harness(hotline.url, policy=RetryPolicy(max_attempts=None))
    result = h.deliver(deadline_s=10.0)
    assert result.deadline_exceeded and not result.delivered and not result.permanent_failure
    assert result.attempts == 4 and sum(h.sleeps) < 10.0
    assert h.attempts[-1][2:] == (False, 0.0)


def test_connection_refused_is_reported_and_retried():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = Harness(f"http://127.0.0.1:{port}/alarm", policy=RetryPolicy(max_attempts=2))
    result = h.deliver()
    assert not result.delivered and result.attempts == 2
    assert str(h.attempts[0][1]).startswith("connection:")


def test_an_async_attempt_callback_is_awaited_and_drills_use_the_drill_url(hotline):
    seen: list[int | str] = []

    async def journal(n: int, label: int | str, *, will_retry: bool, delay_s: float) -> None:
        await asyncio.sleep(0)
        seen.append(label)

    channel = HttpChannel(hotline.url, SECRET, drill_url=hotline.url.replace("/alarm", "/drill"))
    result = asyncio.run(channel.deliver(make_request(drill=True), on_attempt=journal))
    assert result.delivered and seen == [200]
    assert hotline.requests()[0].path == "/drill"
    assert hotline.requests()[0].body["drill"] is True


def test_cancelling_deliver_is_not_swallowed(hotline):
    hotline.hang()
    channel = HttpChannel(hotline.url, SECRET, read_timeout_s=20.0)

    async def scenario() -> None:
        task = asyncio.create_task(channel.deliver(make_request()))
        arrived = await asyncio.to_thread(hotline.wait_for, lambda s: len(s.requests()) == 1, 10)
        assert arrived
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the abandoned attempt ends with its connection, not 20 s later
        hotline.release()

    asyncio.run(asyncio.wait_for(scenario(), RUN_LIMIT_S))


def test_from_config_takes_the_site_settings(tmp_path):
    from gateway.config.schema import HttpChannel as HttpConfig

    cfg = HttpConfig(url="https://hotline.example/alarm", secret_file="s", ca_file="ca.pem",
                     timeout_s=20.0, max_attempts=3, drill_url="https://hotline.example/drill")
    channel = HttpChannel.from_config(cfg, "sécret\n".strip(), ca_file=tmp_path / "ca.pem")
    assert channel.ca_file == str(tmp_path / "ca.pem")
    assert (channel.connect_timeout_s, channel.read_timeout_s) == (10.0, 20.0)
    assert channel.policy.max_attempts == 3
    assert channel.url_for(make_request(drill=True)) == "https://hotline.example/drill"
    assert channel.health()["tls"] == "ca_file"


# -- TLS -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_hotline(ca: trustme.CA, *names: str) -> HotlineServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return HotlineServer(SECRET, ssl_context=context)


def _ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "hotline-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_tls_verifies_with_the_ca_file(ca, tmp_path):
    with _tls_hotline(ca, "127.0.0.1") as server:
        assert server.url.startswith("https://")
        result = Harness(server.url, ca_file=_ca_file(ca, tmp_path)).deliver()
        assert result.delivered and server.requests()[0].signature_ok


def test_tls_without_the_ca_fails_as_a_reported_error(ca):
    with _tls_hotline(ca, "127.0.0.1") as server:
        h = Harness(server.url, policy=RetryPolicy(max_attempts=2))
        result = h.deliver()
        assert not result.delivered and not result.permanent_failure
        assert all(str(a[1]).startswith("tls:") for a in h.attempts)
        assert "CERTIFICATE_VERIFY_FAILED" in str(h.attempts[0][1])
        assert server.requests() == []  # nothing was sent to an unverified peer


def test_tls_rejects_a_certificate_for_another_name(ca, tmp_path):
    with _tls_hotline(ca, "hotline.example") as server:
        h = Harness(server.url, ca_file=_ca_file(ca, tmp_path), policy=RetryPolicy(max_attempts=1))
        assert not h.deliver().delivered
        assert "mismatch" in str(h.attempts[0][1])


def test_insecure_is_explicit_and_logged(ca, caplog):
    with _tls_hotline(ca, "hotline.example") as server:
        h = Harness(server.url, insecure=True)
        with caplog.at_level(logging.WARNING, logger="gateway.escalation.http"):
            assert h.deliver().delivered
        assert "verification is OFF" in caplog.text
        assert h.channel.health()["tls"] == "insecure"


def test_a_missing_ca_file_is_reported_not_raised(tmp_path):
    h = Harness("https://127.0.0.1:9/alarm", ca_file=str(tmp_path / "absent.pem"),
                policy=RetryPolicy(max_attempts=1))
    assert not h.deliver().delivered
    assert "cannot load CA file" in str(h.attempts[0][1])


# -- the hotline itself ------------------------------------------------------------------

def test_the_hotline_runs_from_asyncio_code():
    async def scenario() -> None:
        async with HotlineServer(SECRET) as server:
            assert (await HttpChannel(server.url, SECRET).deliver(make_request())).delivered
            seen = await asyncio.to_thread(server.wait_for, lambda s: len(s.deliveries()) == 1)
            assert seen

    asyncio.run(asyncio.wait_for(scenario(), RUN_LIMIT_S))


def test_the_hotline_restarts_on_the_same_port_and_refuses_while_down(hotline):
    url = hotline.url
    hotline.stop()
    assert Harness(url, policy=RetryPolicy(max_attempts=1)).deliver().delivered is False
    hotline.start()
    assert hotline.url == url and Harness(url).deliver().delivered


def test_the_hotline_rejects_stale_timestamps_and_off_contract_bodies(hotline):
    stale = str(int(time.time()) - 3600)
    body = make_request().to_body()
    assert verify_signature(SECRET, stale, sign(SECRET, int(stale), body), body, time.time())
    bad = json.dumps({"escalation_id": "x"}).encode()
    ok, problem, _ = hotline._check(
        {"x-alarm-timestamp": str(int(time.time())), "content-type": "application/json",
         "x-alarm-signature": sign(SECRET, int(time.time()), bad)}, bad)
    assert ok and problem is not None and "contract" in problem


# -- the sans-I/O model ------------------------------------------------------------------

@pytest.mark.parametrize(("status", "verdict"), [
    (200, "delivered"), (204, "delivered"), (301, "permanent"), (400, "permanent"),
    (401, "permanent"), (404, "permanent"), (408, "retry"), (429, "retry"), (500, "retry"),
    (503, "retry"), (599, "retry"), (999, "retry"),
])
def test_classify_status(status, verdict):
    assert classify_status(status) == verdict


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("-5", None), ("soon", None), ("²", None),
    ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0), (None, None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=40.0) == expected


@given(attempt=st.integers(min_value=1, max_value=10_000), rand=st.floats(0.0, 0.999999),
       retry_after=st.none() | st.floats(min_value=0, max_value=1e12))
def test_backoff_is_capped_and_never_negative(attempt, rand, retry_after):
    policy = RetryPolicy()
    delay = policy.delay_s(attempt, retry_after, rand)
    assert 0.0 <= delay <= max(policy.cap_s, policy.retry_after_max_s)
    if retry_after is None:
        assert delay <= policy.cap_s


def test_the_body_round_trips_and_validates():
    request = make_request()
    assert EscalationRequest.from_dict(json.loads(request.to_body())) == request
    with pytest.raises(ValueError):
        make_request(code="427")
    with pytest.raises(TypeError):
        make_request(press_count=True)


def test_delivered_while_asyncios_default_pool_is_full(hotline):
    """A console login flood once filled asyncio's default thread pool and held the police
    back for seconds: the channel's POSTs run on threads of its own."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    h = Harness(hotline.url)
    release = threading.Event()

    async def scenario() -> DeliveryResult:
        loop = asyncio.get_running_loop()
        default = ThreadPoolExecutor(1)
        loop.set_default_executor(default)
        stuck = loop.run_in_executor(None, release.wait, RUN_LIMIT_S)  # the pool is full
        try:
            return await asyncio.wait_for(
                h.channel.deliver(make_request(), on_attempt=h._on_attempt), 10)
        finally:
            release.set()
            await stuck

    result = asyncio.run(scenario())
    assert result.delivered and [d.n for d in hotline.deliveries()] == [1]
