"""The alarm engine: an :class:`~gateway.core.ports.EventProcessor` driving every alarm's life.

Sans-I/O and clock-driven. It sees each event on the recorder's path, in journal order,
and answers with what must be committed *with* it: the press annotated with its
``alarm_id``, ``alarm_state`` follow-ups, the retained ``alarm/<id>`` document and the
small private ``alarm:<id>`` record (what the document does not carry): a restart rebuilds
each alarm from the two. After the commit: the LEDs.

Escalation decisions are ``alarm_state`` events whose detail carries a plan
(:mod:`gateway.alarms.plan`); the dispatcher executes them and reports back with
``escalation_attempt`` events, which this engine folds into the alarm. Police timers are
stored as wall-clock deadlines (they survive a restart) but waited for on the monotonic
clock: :meth:`next_due` / :meth:`on_timer` let a small task (or a test with a ManualClock)
drive them. Rules: ``docs/alarms.md``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gateway.alarms import model as am
from gateway.alarms.model import Alarm
from gateway.alarms.plan import Plan, apply_plan, build_plan, build_reminder, targets
from gateway.alarms.policy import (
    DURESS,
    IMMEDIATE,
    NEVER,
    UNACKNOWLEDGED_AFTER,
    Decision,
    MassDetector,
    decide,
)
from gateway.config.schema import SiteConfig
from gateway.core.enums import Channel, EntryStatus
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, Indicator, ProcessResult

log = logging.getLogger(__name__)

RAISING = {EventType.PRESS, EventType.HOLD, EventType.OPEN}
ESCALATE, REMIND = "escalate_at", "remind_at"  # the two timers an open alarm may hold
KEEP_RESOLVED_S = 7 * 86400  # resolved alarms kept in memory, so late commands get a reason


class _Out:
    """What one ``process`` call accumulates for its :class:`ProcessResult`."""

    def __init__(self, draft: EventDraft) -> None:
        self.draft = draft
        self.follow_ups: list[EventDraft] = []
        self.changed: dict[str, Alarm] = {}
        self.leds: list[tuple[str, int]] = []

    def touch(self, alarm: Alarm, *, led: bool = False) -> None:
        self.changed[alarm.id] = alarm
        if led:
            self.leds.append((alarm.device, am.LEDS[alarm.state]))


class AlarmEngine:
    """Every alarm of the site. ``stored`` is the journal's ``alarm:`` kv and
    ``documents`` its retained ``alarm/`` documents (a restart rebuilds the alarms from
    both); ``indicators`` is the gateway's live list (LEDs); ``new_id`` makes alarm ids."""

    def __init__(
        self,
        config: SiteConfig,
        clock: Clock,
        stored: dict[str, Any] | None = None,
        indicators: list[Indicator] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        *,
        documents: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._devices = {d.id: d for d in config.devices}
        self._indicators = indicators if indicators is not None else []
        self._new_id = new_id
        self._alarms: dict[str, Alarm] = {}
        #: (alarm id, timer) → (wall deadline, monotonic due time) of its police timer
        #: (``escalate_at``) or its next reminder (``remind_at``)
        self._due: dict[tuple[str, str], tuple[float, float]] = {}
        self._open: dict[tuple[str, bool], str] = {}
        #: alarm id → its private record as last committed, and how many queued commits
        #: carry a newer one: a change that leaves the record as committed (a further press,
        #: a history step) commits only the document. A commit that fails never comes back,
        #: so that alarm's record is written with every change from then on.
        self._committed: dict[str, dict[str, Any]] = {}
        self._in_flight: dict[str, int] = {}
        mass = config.policy.mass_alarm
        self._mass = MassDetector(mass.count, mass.window_s)
        #: called after each commit that changed an alarm (wakes the timer task)
        self.on_change: Callable[[], None] | None = None
        self._load(stored or {}, documents or {})

    # -- queries ------------------------------------------------------------------------
    def get(self, alarm_id: str) -> Alarm | None:
        return self._alarms.get(alarm_id)

    def open_alarms(self) -> list[Alarm]:
        return [a for a in self._alarms.values() if a.open]

    def led_states(self) -> dict[str, int]:
        """The LED state each device with an open alarm shows (what a restart restores);
        a real alarm outranks a drill on the same device, then the most advanced state."""
        out: dict[str, tuple[bool, int]] = {}
        for alarm in self.open_alarms():
            rank = (not alarm.drill, am.LEDS[alarm.state])
            if rank > out.get(alarm.device, (False, -1)):
                out[alarm.device] = rank
        return {device: led for device, (_, led) in out.items()}

    def by_code(self, code: str) -> Alarm | None:
        return next((a for a in self.open_alarms() if a.code == code), None)

    def next_deadline(self) -> float | None:
        """The earliest police timer as a wall-clock time (unix s), for display; or None."""
        times = [a.escalate_at for a in self.open_alarms() if a.escalate_at is not None]
        return min(times) if times else None

    def next_due(self) -> float | None:
        """The earliest police timer or reminder on the monotonic clock (seconds), or
        None. Waiting is done on this, never on the wall clock: an NTP step or a
        technician's ``date`` must neither stall nor hasten the police (a Pi has no RTC)."""
        times = [self._due_of(a, timer) for a in self.open_alarms()
                 for timer in (ESCALATE, REMIND) if getattr(a, timer) is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[EventDraft]:
        """Drafts to record for the timers due at ``now`` (monotonic s): each police timer
        escalates; each reminder due sends the next round (one per mass group)."""
        due = [a for a in self.open_alarms()
               if a.escalate_at is not None and self._due_of(a, ESCALATE) <= now]
        for alarm in due:
            if self.check_command(alarm.id, "escalate") is not None:
                alarm.escalate_at = None  # nothing left to escalate: drop the timer
        drafts = [self.command_draft(a.id, "timer", "policy:unacknowledged_after", "", "timer")
                  for a in due if a.escalate_at is not None]
        groups: set[str] = set()
        for alarm in self.open_alarms():
            if alarm.remind_at is None or self._due_of(alarm, REMIND) > now:
                continue
            if alarm.sms_on_its_way():
                # the last round's SMS is still on its way (a modem retrying): no pile of
                # SMS behind it; ask again one reminder period later
                self._set_reminder(alarm, self._clock.wall())
            elif alarm.group is None or alarm.group not in groups:
                groups.add(alarm.group or "")
                drafts.append(self.command_draft(alarm.id, "remind", "policy:reminder", "",
                                                 "timer"))
        return drafts

    def _set_timer(self, alarm: Alarm, after_s: float, start: float) -> None:
        """Start (or bring forward) a police timer ``after_s`` seconds after ``start``
        (unix s, the event's time, which is now). Stored as a wall-clock deadline for
        the journal, the display and a restart; waited for on the monotonic clock."""
        wall = start + after_s
        if alarm.escalate_at is not None and alarm.escalate_at <= wall:
            return
        alarm.escalate_at = wall
        left = max(0.0, wall - self._clock.wall())
        self._due[(alarm.id, ESCALATE)] = (wall, self._clock.monotonic() + left)

    def _set_reminder(self, alarm: Alarm, start: float) -> None:
        """Schedule the next SMS reminder ``after_s`` after ``start`` (unix s), while the
        ladder has rounds left (``max_rounds`` counts the first escalation); 0 turns
        reminders off. Waited for on the monotonic clock, like the police timer."""
        reminders = self.config.escalation.reminders
        if not reminders.after_s or alarm.rounds >= reminders.max_rounds or not alarm.open \
                or alarm.state == am.POLICE_ACKNOWLEDGED:
            alarm.remind_at = None
            return
        alarm.remind_at = start + reminders.after_s
        left = max(0.0, alarm.remind_at - self._clock.wall())
        self._due[(alarm.id, REMIND)] = (alarm.remind_at, self._clock.monotonic() + left)

    def _due_of(self, alarm: Alarm, timer: str) -> float:
        """The monotonic due time of ``alarm``'s ``timer`` (``escalate_at`` or
        ``remind_at``). A deadline not set in this run (loaded after a restart) is
        anchored on first sight: the wall clock is all that survives a restart, and a
        deadline already past fires at once."""
        wall = getattr(alarm, timer)
        assert wall is not None
        anchored = self._due.get((alarm.id, timer))
        if anchored is None or anchored[0] != wall:
            left = max(0.0, wall - self._clock.wall())
            anchored = (wall, self._clock.monotonic() + left)
            self._due[(alarm.id, timer)] = anchored
        return anchored[1]

    def check_command(self, alarm_id: str, action: str) -> str | None:
        """Why ``action`` is impossible for this alarm now, or None."""
        alarm = self._alarms.get(alarm_id)
        if alarm is None:
            return f"unknown alarm {alarm_id!r}"
        if not alarm.open:
            return f"alarm {alarm.code} is resolved"
        if action == "escalate" and alarm.state == am.POLICE_ACKNOWLEDGED:
            return "the police already acknowledged this alarm"
        if action == "escalate" and alarm.escalation_pending():
            return "an escalation of this alarm is already under way"
        return None

    def command_draft(self, alarm_id: str, action: str, by: str, note: str,
                      origin: str) -> EventDraft:
        """The ``alarm_state`` event a valid command becomes (the engine applies it)."""
        alarm = self._alarms[alarm_id]
        state = {"resolve": am.RESOLVED}.get(action, alarm.state)
        if action == "ack" and alarm.state == am.RAISED:
            state = am.ACKNOWLEDGED
        detail = {"state": state, "action": action, "by": by, "note": note, "origin": origin}
        return EventDraft(EventType.ALARM_STATE, device=alarm.device, drill=alarm.drill,
                          alarm_id=alarm_id, detail=detail)

    # -- the processor ------------------------------------------------------------------
    def process(self, draft: EventDraft) -> ProcessResult:
        out = _Out(draft)
        detail = draft.detail or {}
        if draft.type in RAISING and draft.device in self._devices:
            self._on_input(out)
        elif draft.type == EventType.ALARM_STATE and "action" in detail:
            self._on_command(out)
        elif draft.type == EventType.ESCALATION_ATTEMPT:
            self._on_attempt(out)
        elif draft.type == EventType.POLICE_REPLY:
            self._on_reply(out)
        elif draft.type == EventType.POLICE_ACK:
            self._on_police_ack(out)
        return self._result(out)

    def _result(self, out: _Out) -> ProcessResult:
        retained = {f"alarm/{a.id}": a.document() for a in out.changed.values()}
        records = {a.id: a.private() for a in out.changed.values()}
        fresh = {i: r for i, r in records.items()
                 if self._in_flight.get(i, 0) or self._committed.get(i) != r}
        kv = {f"alarm:{i}": r for i, r in fresh.items()}
        after = [self._show(out.leds)] if out.leds else []
        if fresh:
            for alarm_id in fresh:
                self._in_flight[alarm_id] = self._in_flight.get(alarm_id, 0) + 1
            after.append(lambda: self._records_committed(fresh))
        if out.changed and self.on_change is not None:
            after.append(self.on_change)
        return ProcessResult(out.draft, out.follow_ups, retained, kv, after)

    def _records_committed(self, records: dict[str, dict[str, Any]]) -> None:
        for alarm_id, record in records.items():
            self._committed[alarm_id] = record
            self._in_flight[alarm_id] -= 1

    def _show(self, leds: list[tuple[str, int]]) -> Callable[[], None]:
        def show() -> None:
            for device, led in leds:
                for indicator in list(self._indicators):
                    indicator.set_led(device, led)
        return show

    # -- raising ------------------------------------------------------------------------
    def _on_input(self, out: _Out) -> None:
        draft = out.draft
        dev = self._devices[draft.device or ""]
        if draft.type == EventType.OPEN and not dev.alarm_on_open:
            return
        existing = self._alarms.get(self._open.get((dev.id, draft.drill), ""))
        if existing is not None and existing.open:
            self._repeat(out, existing)
        else:
            self._raise(out, am.alarm_type(dev.kind, str(draft.type)))
        out.draft = am.annotate(out.draft, self._open[(dev.id, draft.drill)])

    def _repeat(self, out: _Out, alarm: Alarm) -> None:
        """A further press adds to ``press_count``; a hold turns a panic into duress, which
        then follows the duress setting (SPEC §4: a press rule never delays it). Neither
        raises a new alarm or a new SMS."""
        if out.draft.type != EventType.HOLD:
            alarm.press_count += 1
        elif alarm.type != DURESS:
            alarm.type = DURESS
            rule = self._decision(alarm)
            if alarm.rounds == 0 and alarm.group is None:
                if rule.mode == IMMEDIATE:
                    self._escalate(out, alarm, "hold", rule.rule)
                elif rule.mode == UNACKNOWLEDGED_AFTER and alarm.state == am.RAISED:
                    self._set_timer(alarm, rule.after_s, self._now(out))
        out.touch(alarm)

    def _raise(self, out: _Out, alarm_type: str) -> None:
        draft = out.draft
        assert draft.device is not None and draft.ts is not None
        dev = self._devices[draft.device]
        alarm_id = self._new_id()
        taken = {a.code for a in self.open_alarms()}
        code = am.next_code(taken, uuid.uuid5(uuid.NAMESPACE_OID, alarm_id).int)
        alarm = Alarm(alarm_id, code, dev.id, dev.ward, dev.room, alarm_type, draft.drill,
                      draft.ts)
        alarm.move(am.RAISED, draft.ts, f"device:{dev.id}")
        self._alarms[alarm_id] = alarm
        self._open[(dev.id, draft.drill)] = alarm_id
        state = self._state_draft(alarm, "raised", f"device:{dev.id}")
        out.follow_ups.append(state)
        out.touch(alarm, led=True)
        self._apply_policy(out, alarm, len(out.follow_ups) - 1)

    def _apply_policy(self, out: _Out, alarm: Alarm, index: int) -> None:
        rule = self._decision(alarm)
        if rule.mode == NEVER:
            return
        kind, group = ("none", None) if alarm.drill else self._mass.raised(
            alarm.id, alarm.raised_at, lambda a: a in self._alarms and self._alarms[a].open)
        if group is not None:
            self._mass_escalation(out, alarm, kind, group.id, list(group.members), index)
        elif rule.mode == IMMEDIATE:
            self._escalate(out, alarm, "immediate", rule.rule, index)
        elif rule.mode == UNACKNOWLEDGED_AFTER:
            self._set_timer(alarm, rule.after_s, alarm.raised_at)

    def _decision(self, alarm: Alarm) -> Decision:
        kind = self._devices[alarm.device].kind if alarm.device in self._devices else ""
        return decide(self.config.policy, alarm.ward, kind, alarm.type, drill=alarm.drill)

    # -- escalating ---------------------------------------------------------------------
    def _escalate(self, out: _Out, alarm: Alarm, reason: str, by: str,
                  index: int | None = None) -> Plan:
        alarm.rounds += 1
        alarm.escalate_at = None
        plan = build_plan(self.config, alarm.id, alarm.rounds, [alarm], reason,
                          self._clock.wall())
        apply_plan(plan, alarm)
        self._remind_after(alarm, plan, self._now(out))
        self._attach(out, alarm, plan, by, index)
        return plan

    def _remind_after(self, alarm: Alarm, plan: Plan, now: float) -> None:
        """A round with SMS in it starts the reminder clock; one without leaves it."""
        if any(d.channel is Channel.SMS for d in plan.deliveries):
            self._set_reminder(alarm, now)

    def _remind(self, out: _Out, alarm: Alarm, by: str) -> None:
        """The next round of the ladder: SMS again to every number of the current tier
        (``NHẮC LẠI <n>`` to those that had it), for the alarm or its whole mass group."""
        members = [alarm]
        if alarm.group is not None:  # the members the police have not acknowledged yet
            members += [a for a in self.open_alarms()
                        if a.group == alarm.group and a.id != alarm.id
                        and a.state != am.POLICE_ACKNOWLEDGED]
        round_no = max(m.rounds for m in members) + 1
        now = self._now(out)
        plan = build_reminder(self.config, alarm.group or alarm.id, round_no, members,
                              self._clock.wall())
        for member in members:
            member.rounds = round_no
            apply_plan(plan, member)
            member.history.append(am.reminder_step(now, member.state, by, round_no))
            self._set_reminder(member, now)
            out.touch(member)
        self._attach(out, alarm, plan, by, None)

    def _mass_escalation(self, out: _Out, alarm: Alarm, kind: str, group_id: str,
                         members: list[str], index: int) -> None:
        """Start a combined escalation, or let ``alarm`` join the running one."""
        alarms = [self._alarms[m] for m in members if m in self._alarms and self._alarms[m].open]
        for member in alarms:
            member.group, member.escalate_at = group_id, None
        if kind == "join":
            source = next((a for a in alarms if a.id != alarm.id), alarm)
            shared = {am.escalation_id(group_id, ch, t, 1) for ch, t in targets(self.config, drill=False)}
            shared -= {x.escalation_id for x in alarm.escalations}
            alarm.escalations.extend(e for e in source.escalations
                                     if e.escalation_id in shared)
            # it follows the group's ladder from here: the group's round and next reminder
            alarm.rounds = max(alarm.rounds, source.rounds)
            if source.remind_at is not None:
                self._set_reminder(alarm, source.remind_at - self.config.escalation.reminders.after_s)
            # the raise says which mass alarm it joined (the group's plan predates it)
            raised = out.follow_ups[index]
            out.follow_ups[index] = am.with_detail(raised, {**(raised.detail or {}),
                                                          "mass_group": group_id})
            out.touch(alarm)
            # joining a group already delivered: escalated now, as the members were
            done = next((e for e in alarm.escalations if e.status is EntryStatus.DELIVERED),
                        None)
            if done is not None and alarm.state in (am.RAISED, am.ACKNOWLEDGED):
                by = f"{done.channel}:{done.target}"
                alarm.move(am.ESCALATED, self._now(out), by)
                out.follow_ups.append(self._state_draft(alarm, am.ESCALATED, by))
                out.touch(alarm, led=True)
            return
        plan = build_plan(self.config, group_id, 1, alarms, "mass", self._clock.wall())
        for member in alarms:
            apply_plan(plan, member)
            member.rounds = max(member.rounds, plan.round)  # the group's round, for reminders
            self._remind_after(member, plan, self._now(out))
            out.touch(member)
        self._attach(out, alarm, plan, "policy.mass_alarm", index)

    def _attach(self, out: _Out, alarm: Alarm, typed: Plan, by: str,
                index: int | None) -> None:
        """Put the plan into the deciding event (journaled as JSON: the journal boundary):
        the raise follow-up, the command draft, or a new ``alarm_state`` follow-up."""
        plan = typed.to_json()
        out.touch(alarm)
        if index is not None:
            target = out.follow_ups[index]
            out.follow_ups[index] = am.with_detail(target, {**(target.detail or {}),
                                                          "escalation": plan})
        elif out.draft.type == EventType.ALARM_STATE and out.draft.alarm_id == alarm.id:
            out.draft = am.with_detail(out.draft, {**(out.draft.detail or {}), "escalation": plan})
        else:
            state = self._state_draft(alarm, alarm.state, by)
            out.follow_ups.append(am.with_detail(state, {**(state.detail or {}),
                                                       "escalation": plan}))

    # -- commands, deliveries, replies --------------------------------------------------
    def _on_command(self, out: _Out) -> None:
        detail = dict(out.draft.detail or {})
        alarm_id = out.draft.alarm_id or ""
        action = str(detail.get("action"))
        reason = self.check_command(alarm_id, "escalate" if action in ("timer", "remind")
                                    else action)
        if reason is not None:
            out.draft = am.rejected(alarm_id, reason, detail, known=alarm_id in self._alarms)
            if alarm_id in self._alarms and action == "timer":
                self._alarms[alarm_id].escalate_at = None
            if alarm_id in self._alarms and action == "remind":
                # still open and unanswered (a round on its way): ask again later
                self._set_reminder(self._alarms[alarm_id], self._now(out))
            return
        alarm = self._alarms[alarm_id]
        by = str(detail.get("by", ""))
        if action == "remind":
            self._remind(out, alarm, by)
            return
        if action in ("escalate", "timer"):
            self._escalate(out, alarm, "command" if action == "escalate" else "timer", by)
            return
        note = str(detail.get("note") or "")
        if action == "ack":
            alarm.take(self._now(out), by, note)
        else:
            alarm.move(am.RESOLVED, self._now(out), by, note)
        if not alarm.open:
            self._open.pop((alarm.device, alarm.drill), None)
        out.draft = am.with_detail(out.draft, {**detail, "state": alarm.state})
        out.touch(alarm, led=True)

    def _on_attempt(self, out: _Out) -> None:
        """Fold the attempt into every alarm holding that escalation (a mass group's
        late joiners included)."""
        detail = out.draft.detail or {}
        esc_id = str(detail.get("escalation_id"))
        for alarm in list(self._alarms.values()):
            entry = alarm.fold(esc_id, detail)
            if entry is None:
                continue
            out.touch(alarm)
            if entry.status is EntryStatus.DELIVERED and alarm.state in (am.RAISED,
                                                                       am.ACKNOWLEDGED):
                by = f"{entry.channel}:{entry.target}"
                alarm.move(am.ESCALATED, self._now(out), by)
                out.follow_ups.append(self._state_draft(alarm, am.ESCALATED, by))
                out.touch(alarm, led=True)

    def _on_reply(self, out: _Out) -> None:
        detail = dict(out.draft.detail or {})
        code = detail.get("code")
        alarm = self.by_code(code) if isinstance(code, str) else None
        why = None
        if detail.get("sender_type") == "alphanumeric":
            why = "sender is alphanumeric, not a phone number: never a police number"
        elif not detail.get("authorised"):
            why = "sender is not a configured police number"
        elif code is None:
            why = "not an 'OK <code>' reply"
        elif alarm is None:
            why = f"no open alarm has code {code}"
        elif not self._police_told(alarm):
            why = f"alarm {code} is already {alarm.state}"
        if why is not None or alarm is None:
            out.draft = am.with_detail(out.draft, {**detail, "ignored": why})
            return
        out.draft = am.annotate(out.draft, alarm.id)
        self._police_acknowledge(out, alarm, f"police:{detail.get('from')}")

    def _police_told(self, alarm: Alarm) -> list[Alarm]:
        """The alarms a police acknowledgement of ``alarm`` covers that can still take it:
        ``alarm`` itself, and of its mass group the members the police have been told
        about (a delivery of theirs went out). A member whose alarm has not reached the
        police yet (it joined the group a moment ago; the combined SMS is still on its way)
        keeps its state: its LED must not say "police acknowledged" for a room the police
        do not know of. It moves on when its own delivery goes out, and the next ``OK``
        (or receiver "received") for the group covers it."""
        group = [a for a in self.open_alarms()
                 if alarm.group is not None and a.group == alarm.group and a.id != alarm.id]
        told = [alarm] + [a for a in group if any(
            e.status is EntryStatus.DELIVERED for e in a.escalations)]
        return [a for a in told if am.POLICE_ACKNOWLEDGED in am.TRANSITIONS[a.state]]

    def _police_acknowledge(self, out: _Out, alarm: Alarm, by: str) -> None:
        for member in self._police_told(alarm):
            member.move(am.POLICE_ACKNOWLEDGED, self._now(out), by)
            out.follow_ups.append(self._state_draft(member, am.POLICE_ACKNOWLEDGED, by))
            out.touch(member, led=True)

    # -- helpers ------------------------------------------------------------------------
    def _on_police_ack(self, out: _Out) -> None:
        """An officer's step at a police receiver (SPEC §6): ``police_acknowledged`` is
        applied like an SMS ``OK <code>`` (the whole mass group), by ``police:<officer>``;
        ``on_scene`` and ``closed`` go into the history, the state unchanged."""
        detail = dict(out.draft.detail or {})
        alarm = self._alarms.get(out.draft.alarm_id or "")
        state, by = detail.get("state"), f"police:{detail.get('by')}"
        why = None
        if alarm is None:
            why = "unknown alarm"
        elif state == am.POLICE_ACKNOWLEDGED and not self._police_told(alarm):
            why = f"alarm {alarm.code} is already {alarm.state}"
        if why is not None or alarm is None:
            known = alarm.id if alarm is not None else None
            out.draft = replace(out.draft, alarm_id=known, detail={**detail, "ignored": why})
            return
        out.draft = replace(out.draft, drill=alarm.drill, device=alarm.device)
        if state != am.POLICE_ACKNOWLEDGED:
            alarm.history.append(am.police_step(self._now(out), str(state), by,
                                                str(detail.get("note") or "")))
            out.touch(alarm)
            return
        self._police_acknowledge(out, alarm, by)

    def _state_draft(self, alarm: Alarm, state: str, by: str) -> EventDraft:
        return EventDraft(EventType.ALARM_STATE, device=alarm.device, drill=alarm.drill,
                          alarm_id=alarm.id, detail={"state": state, "by": by, "note": ""})

    def _now(self, out: _Out) -> float:
        return out.draft.ts if out.draft.ts is not None else self._clock.wall()

    def _load(self, stored: dict[str, Any], documents: dict[str, Any]) -> None:
        horizon = self._clock.wall() - KEEP_RESOLVED_S
        for key, data in stored.items():
            if not key.startswith("alarm:") or not isinstance(data, dict):
                continue
            if Alarm.is_full_store(data):  # written before the record shrank
                alarm = Alarm.from_store(data)
            else:
                document = documents.get(f"alarm/{key.removeprefix('alarm:')}")
                if not isinstance(document, dict):
                    log.error("event=alarm_not_restored alarm=%s reason=no_document", key)
                    continue
                alarm = Alarm.restore(document, data)
            if alarm.open or alarm.raised_at >= horizon:
                self._alarms[alarm.id] = alarm
                if not Alarm.is_full_store(data):  # an older record is rewritten small
                    self._committed[alarm.id] = data
        for alarm in self.open_alarms():
            self._open[(alarm.device, alarm.drill)] = alarm.id
        self._mass.restore([(a.raised_at, a.id, a.group) for a in self.open_alarms()
                            if not a.drill])
