"""Site policy (SPEC §4): which alarms go to the police, when, and mass-alarm grouping.

Pure decisions over the config and timestamps, no I/O: :func:`decide` picks the rule for a
ward and device kind; :class:`MassDetector` notices K alarms within W seconds at the site
so that they become one combined escalation instead of K. See ``docs/alarms.md``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.config.schema import Policy, PolicyRule, SiteConfig

IMMEDIATE = "immediate"
UNACKNOWLEDGED_AFTER = "unacknowledged_after"
NEVER = "never"
DURESS = "duress"  # the alarm type of a HOLD or a duress button


@dataclass(frozen=True, slots=True)
class Decision:
    """``mode`` for one alarm; ``after_s`` (seconds) is the security desk's window."""

    mode: str
    after_s: int
    rule: str  # which part of the config decided, for the journal and the docs


def decide(policy: Policy, ward: str | None, kind: str, alarm_type: str, *,
           drill: bool) -> Decision:
    """The police policy for an alarm.

    A duress alarm (a HOLD of any button, any press of a duress button) follows the
    site's duress setting (``policy.duress``, default ``immediate``) unless a rule that
    names duress (``alarm = "duress"``) matches it: press rules never delay it (SPEC §4).
    Among the rules that apply, the most specific wins (ward and kind, then ward, then
    kind; ties: first listed), else ``policy.default``. A drill is always ``immediate``:
    it exists to prove the path to the police end to end, now.
    """
    if drill:
        return Decision(IMMEDIATE, 0, "drill")
    duress = alarm_type == DURESS
    rule = _best_rule(policy.rules, ward, kind, duress=duress)
    if rule is not None:
        index = policy.rules.index(rule)
        return Decision(rule.mode, rule.after_s, f"policy.rules[{index}]")
    if duress:
        return Decision(policy.duress_mode, policy.after_s, policy.duress_key)
    return Decision(policy.default, policy.after_s, "policy.default")


def _best_rule(rules: Iterable[PolicyRule], ward: str | None, kind: str, *,
               duress: bool) -> PolicyRule | None:
    best: PolicyRule | None = None
    best_score = -1
    for rule in rules:
        if (rule.alarm == DURESS) != duress:
            continue
        if rule.ward is not None and rule.ward != ward:
            continue
        if rule.kind is not None and rule.kind != kind:
            continue
        score = (2 if rule.ward is not None else 0) + (1 if rule.kind is not None else 0)
        if score > best_score:
            best, best_score = rule, score
    return best


def describe(decision: Decision) -> str:
    """A decision in words, for ``check-config`` and the logs."""
    if decision.mode == IMMEDIATE:
        return "immediate"
    if decision.mode == NEVER:
        return "never sent to the police"
    return f"police after {decision.after_s} s unless the security desk acknowledges"


def duress_summary(config: SiteConfig) -> list[str]:
    """When duress goes to the police, per ward (and per device kind where kinds differ):
    ``["duress: immediate everywhere"]`` when one setting covers the whole site."""
    policy = config.policy
    per_ward: list[tuple[str, dict[str, Decision]]] = []
    for ward in config.wards:
        present = sorted({d.kind for d in config.devices if d.ward == ward.id})
        per_ward.append((ward.id, {k: decide(policy, ward.id, k, DURESS, drill=False)
                                   for k in present or ["panic_button"]}))
    decisions = [d for _, by_kind in per_ward for d in by_kind.values()]
    if len({_when(d) for d in decisions}) == 1:
        rules = ", ".join(sorted({d.rule for d in decisions}))
        return [f"duress: {describe(decisions[0])} everywhere ({rules})"]
    lines = []
    for ward_id, by_kind in per_ward:
        if len({_when(d) for d in by_kind.values()}) == 1:
            d = next(iter(by_kind.values()))
            lines.append(f"duress in ward {ward_id}: {describe(d)} ({d.rule})")
            continue
        for kind, d in by_kind.items():
            lines.append(f"duress in ward {ward_id}, {kind}: {describe(d)} ({d.rule})")
    return lines


def _when(decision: Decision) -> tuple[str, int]:
    return decision.mode, decision.after_s if decision.mode == UNACKNOWLEDGED_AFTER else 0


@dataclass
class MassGroup:
    """A combined escalation in the making: ``id`` keys its escalation ids."""

    id: str
    members: list[str] = field(default_factory=list)
    last_ts: float = 0.0


class MassDetector:
    """K (``count``) real alarms raised within ``window_s`` seconds form a mass group.

    Once a group exists, each alarm raised within ``window_s`` of its latest member joins
    it (the window slides), so a long burst stays one group. Drills never count.
    """

    def __init__(self, count: int, window_s: float) -> None:
        self.count = count
        self.window_s = window_s
        self._recent: deque[tuple[float, str]] = deque()
        self.group: MassGroup | None = None

    def raised(self, alarm_id: str, ts: float,
               is_open: Callable[[str], bool] = lambda _: True) -> tuple[str, MassGroup | None]:
        """Note an alarm raised at ``ts`` (unix s): ``("none"|"start"|"join", group)``.

        ``is_open`` tells whether an alarm is still open: a group none of whose members is
        open is over (its escalation is finished), so a new alarm never joins it: it would
        get no escalation at all."""
        group = self.group
        if group is not None and not any(is_open(m) for m in group.members):
            self.group = group = None
        if group is not None and ts - group.last_ts <= self.window_s:
            group.members.append(alarm_id)
            group.last_ts = ts
            return "join", group
        self._recent.append((ts, alarm_id))
        while self._recent and self._recent[0][0] < ts - self.window_s:
            self._recent.popleft()
        if len(self._recent) < self.count:
            return "none", None
        members = [a for _, a in self._recent]
        self.group = MassGroup(f"mass-{members[0]}", members, ts)
        self._recent.clear()
        return "start", self.group

    def restore(self, raised: list[tuple[float, str, str | None]]) -> None:
        """Rebuild after a restart from open alarms' ``(raised_at, id, group)``."""
        for ts, alarm_id, group_id in sorted(raised):
            if group_id is None:
                self._recent.append((ts, alarm_id))
            elif self.group is None or self.group.id != group_id:
                self.group = MassGroup(group_id, [alarm_id], ts)
            else:
                self.group.members.append(alarm_id)
                self.group.last_ts = ts
