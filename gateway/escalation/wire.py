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
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

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


@dataclass(frozen=True, slots=True)
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


def classify_status(status: int) -> str:
    """``"delivered"`` (2xx), ``"retry"`` (408, 429, 5xx, nonsense) or ``"permanent"``.

    Redirects count as permanent: a signed alarm is never re-sent to another address
    without a config change.
    """
    if 200 <= status < 300:
        return "delivered"
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        return "retry"
    if 300 <= status < 500:
        return "permanent"
    return "retry"


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
    def verdict(self) -> str:
        return "retry" if self.status is None else classify_status(self.status)


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

    def delay_s(self, attempt: int, retry_after_s: float | None, rand: float) -> float:
        """Seconds to wait after failed ``attempt``; ``rand`` is uniform in [0, 1)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, self.min_delay_s), self.retry_after_max_s)
        exponent = min(max(attempt - 1, 0), 64)
        ceiling = min(self.cap_s, self.base_s * self.factor**exponent)
        return ceiling * (1.0 - self.jitter) + ceiling * self.jitter * rand

    def exhausted(self, attempt: int) -> bool:
        """True once ``attempt`` attempts have been made and no more are allowed."""
        return self.max_attempts is not None and attempt >= self.max_attempts
