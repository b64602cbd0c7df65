"""Running for years: health limits as trouble events, the periodic test report, and loud
warnings for weakened security settings. One feature builder, :func:`build`.

* A health limit crossed (disk, journal backlog, hotline failures; see
  :class:`~gateway.ops.health.HealthLimits`) is journaled once as ``trouble`` with
  ``detail.what``, and once as ``trouble_cleared`` when it clears.
* With ``health.periodic_test_h`` > 0, a ``test_report`` event (``detail.periodic`` true) is
  journaled on that schedule. The schedule survives restarts (the next due time is kept in
  the journal), so a gateway that restarts often neither skips nor repeats tests.
* ``mqtt.tls_insecure`` and ``escalation.http.insecure`` log a WARNING at every start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway.core.events import EventDraft, EventType
from gateway.journal.store import Batch
from gateway.ops.health import HealthLimits, TroubleLatch

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

NEXT_TEST_KEY = "ops:next_test_report"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


async def build(gw: Gateway) -> None:
    """Operations: weak-security warnings, trouble watch, periodic test, control socket."""
    warn_weak_security(gw)
    watch = TroubleWatch(gw)
    gw.health.observe(watch.observe)
    if gw.config.health.periodic_test_h > 0:
        gw.add_task(lambda: periodic_test(gw), name="periodic-test")


def warn_weak_security(gw: Gateway) -> None:
    """One WARNING line per setting that switches TLS verification off or sends a password
    in clear text over the network."""
    config = gw.config
    if config.mqtt.tls_insecure:
        log.warning("event=tls_verification_disabled where=mqtt broker=%r", config.mqtt.url)
    http = config.escalation.http
    if http is not None and http.insecure:
        log.warning("event=tls_verification_disabled where=escalation.http url=%r", http.url)
    for receiver in config.escalation.receivers:
        if receiver.insecure:
            log.warning("event=tls_verification_disabled where=escalation.receivers "
                        "id=%s url=%r", receiver.id, receiver.url)
    url = urlsplit(config.mqtt.url)
    if config.mqtt.password_file and url.scheme == "mqtt" and url.hostname not in _LOOPBACK:
        log.warning("event=password_without_tls where=mqtt broker=%r", config.mqtt.url)


class TroubleWatch:
    """Journals ``trouble`` / ``trouble_cleared`` on each edge of a health limit."""

    def __init__(self, gw: Gateway) -> None:
        self._gw = gw
        self._limits = HealthLimits.from_config(gw.config.health)
        self._latch = TroubleLatch()

    async def observe(self, doc: dict[str, Any]) -> None:
        check = self._limits.check(doc, set(self._latch.active))
        for key, detail in self._latch.edges(check):
            await self._record(key, detail)
            self._latch.settle(key, detail)

    async def _record(self, key: str, detail: dict[str, Any] | None) -> None:
        what = key.partition(":")[0]
        if detail is not None:
            body = {"what": what, **detail}
            await self._gw.recorder.record(EventDraft(EventType.TROUBLE, detail=body))
            log.warning("event=trouble what=%s detail=%s", what, body)
        else:
            body = {"what": what, **_clear_detail(self._latch.active.get(key, {}))}
            await self._gw.recorder.record(EventDraft(EventType.TROUBLE_CLEARED, detail=body))
            log.info("event=trouble_cleared what=%s", what)


def _clear_detail(raised: dict[str, Any]) -> dict[str, Any]:
    return {"consumer": raised["consumer"]} if "consumer" in raised else {}


async def periodic_test(gw: Gateway) -> None:
    """Journal a ``test_report`` every ``health.periodic_test_h`` hours, until cancelled.

    The next due time is stored as a wall-clock time (it survives a restart; one already
    past fires at once) but waited for on the monotonic clock, so an NTP step or a
    technician's ``date`` (a Pi has no RTC) neither stalls nor hastens the schedule."""
    period = gw.config.health.periodic_test_h * 3600
    clock = gw.clock
    stored = _stored_due(gw)
    # a shortened period takes effect at once rather than after the old, longer one
    due = min(stored, clock.wall() + period) if stored else clock.wall() + period
    if due != stored:
        await _store_due(gw, due)
    due_mono = clock.monotonic() + max(0.0, due - clock.wall())
    while True:
        left = due_mono - clock.monotonic()
        if left > 0:
            await asyncio.sleep(min(left, 60.0))
            continue
        try:
            await _report(gw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. disk full: try again shortly, never stop the gateway
            log.error("event=periodic_test_failed error=%r", str(exc))
            await asyncio.sleep(60.0)
            continue
        now = clock.monotonic()
        due_mono += period
        if due_mono <= now:  # the loop was held up past a period: no burst of old tests
            due_mono = now + period
        await _store_due(gw, clock.wall() + (due_mono - now))


async def _report(gw: Gateway) -> None:
    hours = gw.config.health.periodic_test_h
    await gw.recorder.record(EventDraft(
        EventType.TEST_REPORT, detail={"periodic": True, "period_h": hours},
    ))
    log.info("event=periodic_test_report period_h=%s", hours)


async def _store_due(gw: Gateway, due: float) -> None:
    try:
        await gw.journal.commit(Batch(kv={NEXT_TEST_KEY: due}))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the schedule then restarts from now after a restart
        log.error("event=periodic_test_schedule_not_saved error=%r", str(exc))


def _stored_due(gw: Gateway) -> float | None:
    value = gw.journal.kv_all(NEXT_TEST_KEY).get(NEXT_TEST_KEY)
    return float(value) if isinstance(value, int | float) else None
