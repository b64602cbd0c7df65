"""The closed sets of values the escalation path and the indicators speak in.

Each is a ``StrEnum`` (or ``IntEnum``) so that it is the very string (or number) the journal,
MQTT and SPEC §2/§3 carry: values are typed inside the gateway and serialised unchanged at
the journal boundary, and a journal written before these types existed reads back the same.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Channel(StrEnum):
    """A way to the police."""

    HTTP = "http"
    SMS = "sms"
    DC09 = "dc09"
    VOICE = "voice"  # the wake-up call after an SMS (never an escalation of its own)


class DeliveryMode(StrEnum):
    """``policy.delivery``: every channel at once, or SMS only when the hotline failed."""

    DUAL = "dual"
    FALLBACK = "fallback"


class EntryStatus(StrEnum):
    """``alarm/<id>.escalations[].status``: where one delivery of an escalation stands."""

    PENDING = "pending"  # decided, being delivered
    STANDBY = "standby"  # an SMS held back until the hotline fails (``delivery = "fallback"``)
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good (or no channel to send it on)
    SUPERSEDED = "superseded"  # a later round or the alarm's end made it moot


#: entry statuses that need no further delivery
FINAL_STATUSES = frozenset({EntryStatus.DELIVERED, EntryStatus.FAILED, EntryStatus.SUPERSEDED})


class AttemptStatus(StrEnum):
    """``escalation_attempt.detail.status``: what one attempt (or a decision about one) did."""

    DELIVERED = "delivered"
    FAILED = "failed"
    RETRYING = "retrying"  # failed, will be tried again
    ERROR = "error"  # the modem refused or timed out an SMS; it will be tried again
    RATE_LIMITED = "rate_limited"  # held back by the per-number SMS interval
    ACTIVATED = "activated"  # a standby SMS released: the hotline failed or was late
    SUPERSEDED = "superseded"
    # how a wake-up call (channel ``voice``) ended; ``error``: the modem could not dial
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    NO_CARRIER = "no_carrier"
    STOPPED = "stopped"  # hung up while ringing: the police had answered the SMS


class RunOutcome(StrEnum):
    """How a channel's delivery loop for one plan ended."""

    DELIVERED = "delivered"
    REFUSED = "refused"  # permanent refusal: retrying cannot help
    LATE = "late"  # the fallback deadline passed with the escalation still owed
    CLOSED = "closed"  # nothing owed any more (delivered elsewhere, alarm resolved)
    FAILED = "failed"  # no channel to send it on


class LedState(IntEnum):
    """The state a device's LED shows (SPEC §2 ``ACK``/``STATE`` value)."""

    OFF = 0
    RAISED = 1  # alarm received
    ACKNOWLEDGED = 2  # the security desk has it
    ESCALATED = 3  # the police have been called
    POLICE_ACKNOWLEDGED = 4  # the police confirmed
