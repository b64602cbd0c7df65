"""The escalation wire model (SPEC §4), sans-I/O: body, signature, retry rules, results.

Nothing here touches a socket or a clock; the HTTP adapter (``gateway.escalation.http``) and
the simulated hotline (``simulator.hotline``) both build on it, so sender and receiver agree
on the bytes by construction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlencode

from gateway.core.backoff import Backoff

_CODE = re.compile(r"[0-9]{4}")
_DIGITS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """The hospital as the police desk sees it; ``phone`` is the security desk's number."""

    id: str
    name: str
    address: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class WardInfo:
    """A ward (department): config id and display name, e.g. ``"Khoa Cấp cứu"``."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class EscalationRequest:
    """One delivery of one alarm to the hotline. A redelivery reuses ``escalation_id``.

    ``type`` is the alarm type (``panic``, ``duress``, ``intrusion``, ``door``, ``test``…);
    ``raised_at`` and ``escalated_at`` are RFC 3339 UTC strings; ``message`` is the text in
    the site's language and ``message_en`` the English one (see ``gateway.escalation.messages``).
    """

    escalation_id: str
    alarm_id: str
    code: str
    type: str
    drill: bool
    site: SiteInfo
    ward: WardInfo
    room: str | None
    device: str | None
    raised_at: str
    escalated_at: str
    press_count: int
    acknowledged_locally: bool
    message: str
    message_en: str

    def __post_init__(self) -> None:
        if not self.escalation_id or not self.alarm_id:
            raise ValueError("escalation_id and alarm_id must not be empty")
        if not _CODE.fullmatch(self.code):
            raise ValueError(f"alarm code must be 4 digits, not {self.code!r}")
        if not self.type:
            raise ValueError("alarm type must not be empty")
        if isinstance(self.press_count, bool) or not isinstance(self.press_count, int):
            raise TypeError(f"press_count must be an int, not {self.press_count!r}")
        if self.press_count < 0:
            raise ValueError(f"press_count must be >= 0, not {self.press_count}")

    def to_dict(self) -> dict[str, Any]:
        """The body as a dict, keys in SPEC §4 order."""
        return {
            "escalation_id": self.escalation_id,
            "alarm_id": self.alarm_id,
            "code": self.code,
            "type": self.type,
            "drill": self.drill,
            "site": {
                "id": self.site.id,
                "name": self.site.name,
                "address": self.site.address,
                "phone": self.site.phone,
            },
            "ward": {"id": self.ward.id, "name": self.ward.name},
            "room": self.room,
            "device": self.device,
            "raised_at": self.raised_at,
            "escalated_at": self.escalated_at,
            "press_count": self.press_count,
            "acknowledged_locally": self.acknowledged_locally,
            "message": self.message,
            "message_en": self.message_en,
        }

    def to_body(self) -> bytes:
        """The exact bytes that are POSTed and signed: compact UTF-8 JSON, no ``\\u`` escapes."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EscalationRequest:
        """The inverse of :meth:`to_dict` (for the journal and the simulated hotline)."""
        site, ward = d["site"], d["ward"]
        return cls(
            escalation_id=d["escalation_id"],
            alarm_id=d["alarm_id"],
            code=d["code"],
            type=d["type"],
            drill=bool(d["drill"]),
            site=SiteInfo(site["id"], site["name"], site.get("address", ""), site.get("phone", "")),
            ward=WardInfo(ward["id"], ward["name"]),
            room=d.get("room"),
            device=d.get("device"),
            raised_at=d["raised_at"],
            escalated_at=d["escalated_at"],
            press_count=int(d["press_count"]),
            acknowledged_locally=bool(d["acknowledged_locally"]),
            message=d["message"],
            message_en=d["message_en"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryResult:
    """How one :meth:`deliver` call ended.

    ``delivered``: a 2xx came back. ``permanent_failure``: a 4xx (other than 408/429) or a
    redirect: retrying cannot help, the gateway falls back to SMS and raises trouble.
    Neither: attempts ran out or ``deadline_exceeded``; the escalation is still owed.
    ``status`` is the last HTTP status (None if the last attempt got none), ``detail`` a
    one-line reason, ``delivered_at`` RFC 3339 UTC.
    """

    delivered: bool
    permanent_failure: bool
    status: int | None
    attempts: int
    detail: str
    delivered_at: str | None = None
    deadline_exceeded: bool = False

    def __post_init__(self) -> None:
        if self.delivered and (self.permanent_failure or self.deadline_exceeded):
            raise ValueError("a delivered result cannot also be a failure")


def signed_headers(secret: bytes, key: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The SPEC §4 headers for one attempt; ``timestamp`` is unix seconds, ``key`` the
    escalation id (the same on every attempt)."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": key,
        "X-Alarm-Timestamp": str(timestamp),
        "X-Alarm-Signature": sign(secret, timestamp, body),
    }


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``X-Alarm-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``b"<ts>.<body>"``."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    max_skew_s: float = 300.0,
) -> str | None:
    """Why a received request fails the check, or None if it passes (the receiver's side).

    ``timestamp`` and ``signature`` are the raw header values; ``now`` is unix seconds.
    The skew limit (seconds, either way) bounds how long a captured request can be replayed.
    """
    if not timestamp or not _DIGITS.fullmatch(timestamp):
        return "missing or malformed X-Alarm-Timestamp"
    if abs(now - int(timestamp)) > max_skew_s:
        return f"timestamp skew {now - int(timestamp):.0f} s exceeds {max_skew_s:.0f} s"
    if not signature or not hmac.compare_digest(signature, sign(secret, int(timestamp), body)):
        return "bad X-Alarm-Signature"
    return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from now, or None if absent or unreadable.

    Accepts delay-seconds (``"120"``) and an HTTP-date; ``now`` is unix seconds. A date in
    the past gives 0. The caller caps the result: the header comes from a remote party.
    """
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC without a stated zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


RETRYABLE_STATUSES = frozenset({408, 429})


class AttemptCallback(Protocol):
    """Told after every attempt of a channel's delivery loop, on the event loop, so the
    gateway can journal each one: the attempt number, the answer (an HTTP status, a DC-09
    answer) or the error, whether another attempt follows and after how many seconds."""

    def __call__(self, attempt: int, label: int | str, /, *, will_retry: bool,
                 delay_s: float) -> Awaitable[None] | None: ...


class Verdict(StrEnum):
    """What an answer means for the escalation it carried."""

    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify_status(status: int) -> Verdict:
    """``delivered`` (2xx), ``retry`` (408, 429, 5xx, nonsense) or ``permanent``.

    Redirects count as permanent: a signed alarm is never re-sent to another address
    without a config change.
    """
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        return Verdict.RETRY
    if 300 <= status < 500:
        return Verdict.PERMANENT
    return Verdict.RETRY


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one POST produced: an HTTP ``status``, or an ``error`` like ``"timeout: …"``
    (``timeout``, ``connection``, ``protocol`` or ``tls``); ``retry_after`` is the raw
    header and ``excerpt`` the start of a refusal's body, made printable."""

    status: int | None
    error: str | None = None
    retry_after: str | None = None
    excerpt: str = ""

    @property
    def label(self) -> int | str:
        return self.status if self.status is not None else (self.error or "error")

    @property
    def verdict(self) -> Verdict:
        """No answer at all (a time-out, a refused connection) is always worth a retry."""
        return Verdict.RETRY if self.status is None else classify_status(self.status)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped, jittered exponential backoff (all durations in seconds).

    Attempt ``n`` (1-based) that failed waits ``min(cap_s, base_s * factor**(n-1))``, of
    which the last ``jitter`` fraction is random so that many gateways coming back after
    an outage do not retry in step. A ``Retry-After`` from the server replaces the backoff,
    clamped to ``[min_delay_s, retry_after_max_s]``. ``max_attempts`` None retries until
    the caller's deadline or cancellation.
    """

    max_attempts: int | None = 8
    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.5
    min_delay_s: float = 0.2
    retry_after_max_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        if self.base_s < 0 or self.cap_s < 0 or self.factor < 1:
            raise ValueError("base_s and cap_s must be >= 0 and factor >= 1")

    @property
    def backoff(self) -> Backoff:
        """The delays between attempts (:class:`gateway.core.backoff.Backoff`)."""
        return Backoff(first_s=self.base_s, cap_s=self.cap_s, factor=self.factor,
                       jitter=self.jitter)

    def delay_s(self, attempt: int, retry_after_s: float | None, rand: float) -> float:
        """Seconds to wait after failed ``attempt``; ``rand`` is uniform in [0, 1)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, self.min_delay_s), self.retry_after_max_s)
        return self.backoff.delay_s(attempt, rand)

    def exhausted(self, attempt: int) -> bool:
        """True once ``attempt`` attempts have been made and no more are allowed."""
        return self.max_attempts is not None and attempt >= self.max_attempts

    def stop(self, attempt: int, *, elapsed_s: float, delay_s: float,
             deadline_s: float | None) -> Stop | None:
        """Why to stop after failed ``attempt`` rather than wait ``delay_s`` and retry, or
        None: the attempt limit, or a retry that would start past ``deadline_s`` (seconds
        since the first attempt)."""
        if self.exhausted(attempt):
            return Stop(reason=StopReason.EXHAUSTED,
                        text=f"gave up after {attempt} attempt{'s' if attempt > 1 else ''}")
        if deadline_s is not None and elapsed_s + delay_s >= deadline_s:
            return Stop(reason=StopReason.LATE, text=f"not delivered within {deadline_s:g} s")
        return None


class StopReason(StrEnum):
    """Why a retry loop stopped while the escalation is still owed."""

    EXHAUSTED = "exhausted"  # the attempt limit: the caller pauses, then tries again
    LATE = "late"  # the deadline (``fallback_after_s``): time for the fallback channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """A stop of a retry loop: its ``reason`` and the one line that says so."""

    reason: StopReason
    text: str


# -- acknowledgements back from a police receiver (SPEC §6) ------------------------------------

ACKS_PATH = "/v1/acks"
MAX_ACKS_PER_PAGE = 100


class AckState(StrEnum):
    """What the police did with an alarm, as the receiver reports it back."""

    POLICE_ACKNOWLEDGED = "police_acknowledged"  # an officer took it ("Đã nhận")
    ON_SCENE = "on_scene"  # officers arrived ("Đã đến nơi")
    CLOSED = "closed"  # the police closed it, with a note ("Kết thúc")


@dataclass(frozen=True, slots=True)
class PoliceAck:
    """One officer action. ``cursor`` is the receiver's increasing number for it, ``by`` the
    officer's name, ``ts`` RFC 3339 UTC, ``note`` free text (empty when none)."""

    cursor: int
    escalation_id: str
    alarm_id: str
    code: str
    state: AckState
    by: str
    ts: str
    note: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.cursor, bool) or not isinstance(self.cursor, int) or self.cursor < 1:
            raise ValueError(f"ack cursor must be a positive int, not {self.cursor!r}")
        if not self.alarm_id or not self.by:
            raise ValueError("ack alarm_id and by must not be empty")
        if not isinstance(self.state, AckState):
            object.__setattr__(self, "state", AckState(self.state))

    def to_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "escalation_id": self.escalation_id,
                "alarm_id": self.alarm_id, "code": self.code, "state": str(self.state),
                "by": self.by, "ts": self.ts, "note": self.note}

    @classmethod
    def from_dict(cls, d: Any) -> PoliceAck:
        """Raises ``ValueError`` (or ``TypeError``/``KeyError``) on a malformed entry."""
        if not isinstance(d, dict):
            raise ValueError("an ack must be a JSON object")
        fields = ("escalation_id", "alarm_id", "code", "by", "ts")
        if not all(isinstance(d.get(k), str) for k in fields):
            raise ValueError(f"an ack needs string fields {', '.join(fields)}")
        note = d.get("note") or ""
        if not isinstance(note, str):
            raise ValueError("ack note must be a string")
        return cls(d["cursor"], d["escalation_id"], d["alarm_id"], d["code"],
                   AckState(d["state"]), d["by"], d["ts"], note)


@dataclass(frozen=True, slots=True)
class AckPage:
    """The answer to ``GET /v1/acks``: the cursor to ask after next time, and the acks."""

    cursor: int
    acks: tuple[PoliceAck, ...] = ()

    def to_body(self) -> bytes:
        doc = {"cursor": self.cursor, "acks": [a.to_dict() for a in self.acks]}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_body(cls, raw: bytes) -> AckPage:
        """Parse and validate an answer; ``ValueError`` with a one-line reason if it is bad."""
        try:
            doc = json.loads(raw)
            cursor = doc["cursor"]
            if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
                raise ValueError(f"cursor must be an int >= 0, not {cursor!r}")
            entries = doc["acks"]
            if not isinstance(entries, list):
                raise ValueError("acks must be a list")
            acks = tuple(PoliceAck.from_dict(a) for a in entries)
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed ack page: {type(exc).__name__}: {exc}"[:200]) from None
        return cls(cursor, acks)


def acks_path_qs(site: str, after: int, wait_s: int, base_path: str = "") -> str:
    """The path and query of one poll, exactly as signed and sent (``base_path`` is the
    receiver URL's own path, e.g. ``/police``, without a trailing slash)."""
    return f"{base_path}{ACKS_PATH}?{urlencode({'site': site, 'after': after, 'wait': wait_s})}"


def get_signing_bytes(path_qs: str) -> bytes:
    """What a GET's signature covers after ``"<ts>."``: ``b"GET <path and query>"``."""
    return b"GET " + path_qs.encode("utf-8")


def signed_get_headers(secret: bytes, path_qs: str, timestamp: int) -> dict[str, str]:
    """``X-Alarm-Timestamp`` and ``X-Alarm-Signature`` for one ack poll (SPEC §6)."""
    return {"X-Alarm-Timestamp": str(timestamp),
            "X-Alarm-Signature": sign(secret, timestamp, get_signing_bytes(path_qs))}
