"""What a DC-09 message becomes at the police desk (SPEC §7).

An alarm code (panic ``PA``, duress ``HA``, burglary ``BA``, fire ``FA``, medical ``MA``,
emergency ``QA``) is an alarm on the wall screen under the site its account names, with
the sender's text (ward and room, from this project's gateways) and zone; a test report
(``RP``, ``RX``) is a sign of life stored like a gateway's periodic test; a link test
(``NULL``) only marks the site alive; anything else (restorals, troubles) is journaled as
``dc09_event`` and marks the site alive. All of it is committed before the listener
writes the ``ACK``. Refusals go to the intake's journal of refusals with ``path = "dc09"``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core.clock import rfc3339
from gateway.core.ports import Clock
from receiver.dc09 import Answer, Dc09Message, Dc09Refusal
from receiver.intake import AlarmIntake
from receiver.model import TEST_TYPE, AlarmSource, IncomingAlarm, Refusal
from receiver.store import Batch, Store

ALARM_TYPES = {"PA": "panic", "HA": "duress", "BA": "intrusion", "FA": "fire",
               "MA": "medical", "QA": "emergency"}
TEST_CODES = frozenset({"RP", "RX"})


class PanelIntake:
    """The receiver's :class:`~receiver.dc09.Dc09Handler`."""

    def __init__(self, intake: AlarmIntake, store: Store, clock: Clock,
                 sites: dict[str, str]) -> None:
        self._intake = intake
        self._store = store
        self._clock = clock
        self._sites = sites  # account (upper case) -> site id
        self.alarms = 0
        self.others = 0

    async def received(self, message: Dc09Message) -> Answer:
        if message.kind == "NULL":
            self._intake.heard(message.site)
        elif message.code in ALARM_TYPES or message.code in TEST_CODES:
            await self._intake.accept(incoming(message, self._clock.wall()))
            self.alarms += 1
        else:
            self._intake.heard(message.site)
            batch = Batch()
            self._store.event(batch, self._clock.wall(), "dc09_event", message.site, {
                "account": message.account, "seq": message.seq, "code": message.code,
                "zone": message.zone, "text": message.text, "remote": message.peer})
            await self._store.queue(batch)
            self.others += 1
        return Answer.ACK

    async def refused(self, refusal: Dc09Refusal) -> None:
        status = 401 if any(w in refusal.reason for w in ("key", "account", "time stamp")) \
            else 400
        await self._intake.refuse(Refusal(
            status, refusal.reason, refusal.peer,
            self._sites.get(refusal.account or ""), "dc09", None))


def incoming(m: Dc09Message, now: float) -> IncomingAlarm:
    """The desk's view of one DC-09 alarm or test. The key (account, number, event, day
    received) makes the sender's resends of the same message one alarm."""
    day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
    zone = f"{m.zone:03d}" if m.zone is not None else ""
    key = f"dc09:{m.account}:{m.seq:04d}:{m.code}{zone}:{day}"
    kind = TEST_TYPE if m.code in TEST_CODES else ALARM_TYPES[m.code]
    text = m.text or (f"Vùng {m.area}" if m.area else "")
    return IncomingAlarm(
        site=m.site, source=AlarmSource.DC09, key=key, alarm_id=key, code=f"{m.seq:04d}",
        type=kind, drill=False, ward_id=m.area or "", ward_name=text,
        room=f"zone {m.zone}" if m.zone is not None else None,
        device=f"{m.account}/{zone}" if zone else m.account,
        raised_at=rfc3339(m.sent_at if m.sent_at is not None else now),
        escalated_at=rfc3339(now),
        message=f"SIA {m.code} #{m.account} zone {zone or '-'} {m.text}".strip(),
        message_en=f"SIA {m.code} account {m.account} zone {zone or '-'} {m.text}".strip(),
        raw={"dc09": m.raw, "remote": m.peer})
