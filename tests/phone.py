"""The police phone, for tests: every SMS the gateway sent, read as a phone reads it.

The PDUs are taken from what crossed the simulated modem's pty (``AT+CMGS`` bodies in its
command log) and decoded with ``smspdudecoder``, a decoder that is not the project's, so
a bug shared by the project's encoder and decoder cannot hide. Parts are joined by their
concatenation header (reference and number), as a handset does.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO
from typing import Any

from smspdudecoder.fields import SMSSubmit


@dataclass(frozen=True, slots=True)
class PhoneSms:
    """One message as the recipient's phone shows it."""

    number: str
    text: str
    parts: int
    encoding: str  # "gsm" or "ucs2", as the DCS says


def decode(pdu_hex: str) -> dict[str, Any]:
    """One SMS-SUBMIT (with its SMSC prefix, as sent after the ``> `` prompt)."""
    return SMSSubmit.decode(StringIO(pdu_hex))


def phone_view(commands: list[str]) -> list[PhoneSms]:
    """The messages in a modem's command log (``ModemSimulator.commands()``), in order."""
    whole: list[PhoneSms] = []
    pending: dict[tuple[str, int], dict[int, str]] = {}
    for line in commands:
        if not line.startswith("<PDU "):
            continue
        sms = decode(line[5:-1])
        number = sms["recipient"]["number"]
        if sms["recipient"]["toa"]["ton"] == "international":
            number = "+" + number
        data = sms["user_data"]
        text, encoding = data["data"], sms["dcs"]["encoding"]
        concat = next((e["data"] for e in (data.get("header") or {}).get("elements", [])
                       if e["iei"] in (0x00, 0x08)), None)
        if concat is None:
            whole.append(PhoneSms(number, text, 1, encoding))
            continue
        got = pending.setdefault((number, concat["reference"]), {})
        got[concat["part_number"]] = text
        if len(got) == concat["parts_count"]:
            joined = "".join(got[i] for i in sorted(got))
            whole.append(PhoneSms(number, joined, concat["parts_count"], encoding))
            del pending[(number, concat["reference"])]
    return whole
