"""Scenario expectations: what must hold on a simulated site, each within a bounded wait.

Each expectation polls what the police simulators received or what the site's MQTT shows
(retained device states and alarm documents, events) until it holds or ``within_s`` seconds
(default 10) pass, and says in one line what it saw either way, so a failed drill report
explains itself. ``no_police`` is the one that must hold for its whole window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from simulator.rig import PoliceMessage, SimulatedSite

T = TypeVar("T")
DEFAULT_WITHIN_S = 10.0
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Expectation:
    required: set[str]
    optional: set[str]
    check: Callable[[SimulatedSite, dict[str, Any]], Outcome]


def poll(predicate: Callable[[], T | None], within_s: float) -> T | None:
    """``predicate()``'s first truthy value within ``within_s`` seconds, else None."""
    deadline = time.monotonic() + within_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)


def _within(a: dict[str, Any]) -> float:
    return float(a.get("within_s", DEFAULT_WITHIN_S))


def _body_matches(body: dict[str, Any], a: dict[str, Any]) -> bool:
    text = f"{body.get('message', '')}\n{body.get('message_en', '')}"
    return ((a.get("device") is None or body.get("device") == a["device"])
            and (a.get("drill") is None or bool(body.get("drill")) == a["drill"])
            and (a.get("type") is None or body.get("type") == a["type"])
            and (a.get("contains") is None or str(a["contains"]) in text))


def _summary(items: list[PoliceMessage]) -> str:
    if not items:
        return "nothing"
    return "; ".join(f"{m.channel} {m.target} -> {m.answer}"
                     + (f" ({m.device})" if m.device else "") for m in items[-5:])


def police(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """The hotline accepted (2xx) an alarm matching ``device`` / ``drill`` / ``type`` /
    ``contains`` (in ``message`` or ``message_en``) / ``path`` (``/alarm``, ``/drill``)."""
    if site.hotline is None:
        return Outcome(False, "this site has no HTTP hotline")
    hotline = site.hotline
    found = poll(lambda: [r.body for r in hotline.deliveries() if r.body is not None
                          and _body_matches(r.body, a)
                          and a.get("path") in (None, r.path)], _within(a))
    if found:
        b = found[0]
        return Outcome(True, f"hotline accepted alarm {b.get('code')} ({b.get('type')}, "
                             f"drill={str(b.get('drill')).lower()}) for {b.get('device')}")
    return Outcome(False, f"no matching alarm reached the hotline in {_within(a):g} s; "
                          f"it saw: {_summary([m for m in site.police() if m.channel == 'http'])}")


def arc(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """The simulated receiving centre acknowledged a DC-09 message matching ``code``
    (e.g. ``PA``, ``RX``) / ``zone`` / ``contains`` (in its text)."""
    if site.arc is None:
        return Outcome(False, "this site has no receiving centre ([escalation.dc09])")
    centre = site.arc

    def found() -> list[Any]:
        return [x for x in centre.arrivals() if x.message is not None and x.answer == "ACK"
                and a.get("code") in (None, x.message.code)
                and a.get("zone") in (None, x.message.zone)
                and str(a.get("contains", "")) in x.message.text]

    hit = poll(found, _within(a))
    if hit:
        return Outcome(True, f"the ARC acknowledged {hit[0].line().strip()}")
    seen = "; ".join(x.line().strip() for x in centre.arrivals()[-3:]) or "nothing"
    return Outcome(False, f"no matching DC-09 message at the ARC in {_within(a):g} s; "
                          f"it saw: {seen}")


def no_police(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """No HTTP request and no SMS reached the police, through the whole window."""
    reached = poll(site.police, _within(a))
    if reached:
        return Outcome(False, f"the police were contacted: {_summary(reached)}")
    return Outcome(True, f"no police request in {_within(a):g} s")


def sms(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """An SMS ``to`` a number (any if absent) ``contains`` a text (any if absent)."""
    if site.modem is None:
        return Outcome(False, "this site has no modem")

    def match() -> list[Any]:
        modem = site.modem
        return [m for m in (modem.sent_messages() if modem else [])
                if (a.get("to") is None or m.number == a["to"])
                and (a.get("contains") is None or str(a["contains"]) in m.text)]

    found = poll(match, _within(a))
    if found:
        return Outcome(True, f"SMS to {found[0].number}: {found[0].text!r}")
    sent = site.modem.sent_messages()
    return Outcome(False, f"no matching SMS in {_within(a):g} s; sent: "
                          + ("; ".join(f"{m.number}: {m.text[:60]!r}" for m in sent) or "none"))


def device_state(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """``device/<id>/state`` shows ``state`` (normal, alarm, trouble, offline)."""
    assert site.observer is not None
    obs, device, want = site.observer, str(a["device"]), str(a["state"])

    def holds() -> bool:
        doc = obs.device_state(device)
        return doc is not None and doc.get("state") == want

    if obs.wait_for(holds, _within(a)):
        return Outcome(True, f"{device} is {want}")
    doc = obs.device_state(device) or {}
    return Outcome(False, f"{device} is {doc.get('state', 'unknown')}, not {want}, "
                          f"after {_within(a):g} s")


def alarm(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """The device's latest alarm (``drill`` to choose) is in ``state`` (raised,
    acknowledged, escalated, police_acknowledged, resolved)."""
    assert site.observer is not None
    obs, device, want = site.observer, str(a["device"]), str(a["state"])
    drill = a.get("drill")

    def holds() -> dict[str, Any] | None:
        doc = obs.alarm_for(device, drill)
        return doc if doc is not None and doc.get("state") == want else None

    doc = obs.wait_for(holds, _within(a))
    if doc:
        return Outcome(True, f"alarm {doc.get('code')} of {device} is {want}")
    last = obs.alarm_for(device, drill)
    seen = f"is {last.get('state')}" if last else "does not exist"
    return Outcome(False, f"the alarm of {device} {seen}, not {want}, after {_within(a):g} s")


def event(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """An event of ``type`` (for ``device`` if given) was published."""
    assert site.observer is not None
    obs, want = site.observer, str(a["type"])

    def found() -> list[dict[str, Any]]:
        return [e for e in obs.events() if e.get("type") == want
                and (a.get("device") is None or e.get("device") == a["device"])]

    if obs.wait_for(found, _within(a)):
        return Outcome(True, f"event {want} published")
    return Outcome(False, f"no {want} event in {_within(a):g} s")


def led(site: SimulatedSite, a: dict[str, Any]) -> Outcome:
    """The device's LED shows ``value`` (0 off, 1 received, 2 security ack, 3 police
    notified, 4 police acknowledged)."""
    device, want = str(a["device"]), int(a["value"])
    if poll(lambda: site.leds().get(device) == want, _within(a)):
        return Outcome(True, f"LED of {device} is {want}")
    return Outcome(False, f"LED of {device} is {site.leds().get(device)}, not {want}")


WITHIN = {"within_s"}
EXPECTATIONS: dict[str, Expectation] = {
    "police": Expectation(set(), {"device", "drill", "type", "contains", "path"} | WITHIN,
                          police),
    "no_police": Expectation(set(), WITHIN, no_police),
    "arc": Expectation(set(), {"code", "zone", "contains"} | WITHIN, arc),
    "sms": Expectation(set(), {"to", "contains"} | WITHIN, sms),
    "device_state": Expectation({"device", "state"}, WITHIN, device_state),
    "alarm": Expectation({"device", "state"}, {"drill"} | WITHIN, alarm),
    "event": Expectation({"type"}, {"device"} | WITHIN, event),
    "led": Expectation({"device", "value"}, WITHIN, led),
}
