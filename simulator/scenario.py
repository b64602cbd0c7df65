"""Scenario files: timed steps against a simulated site, and expectations with bounded waits.

A scenario is TOML (format and examples: ``docs/simulator.md``)::

    [scenario]
    name = "A panic press at the emergency desk reaches the police"

    [[steps]]
    at = 0.0
    action = "press"
    device = "er-desk-1"

    [[steps]]
    expect = "police"
    device = "er-desk-1"
    within_s = 10

A step starts ``at`` seconds after the start, or as soon as the step before it finished if
that is later. Actions act on the site (:mod:`simulator.rig`); expectations wait, bounded
by ``within_s``, for something to hold (:mod:`simulator.expect`). The run stops at the first
step that fails, and the report names it. Everything is checked against the site's config
before anything starts, so a typo is a one-line usage error, not a failed drill.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gateway.config.schema import SiteConfig
from gateway.core.errors import CommandError, GatewayError
from simulator.expect import EXPECTATIONS, Outcome
from simulator.faults import ARC_MODES, HOTLINE_MODES, MODEM_MODES
from simulator.rig import SimulatedSite

COMMON = {"at", "name"}
#: action -> (required keys, optional keys)
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "press": ({"device"}, set()),
    "hold": ({"device"}, set()),
    "release": ({"device"}, set()),
    "silence": ({"device"}, {"on"}),
    "reboot": ({"device"}, set()),
    "tamper": ({"device"}, {"opened"}),
    "drain": ({"device"}, {"mv"}),
    "noisy": ({"on"}, set()),
    "modem": ({"mode"}, {"code", "times"}),
    "hotline": ({"mode"}, {"times"}),
    "arc": ({"mode"}, {"times"}),
    "sms": ({"from", "text"}, {"device"}),
    "ack": ({"device"}, {"by", "note"}),
    "resolve": ({"device"}, {"by", "note"}),
    "drill": ({"device"}, set()),
    "wait": ({"seconds"}, set()),
}
DEFAULT_DRAIN_MV = 2400


@dataclass(frozen=True, slots=True)
class Step:
    """One step: an ``action`` or an ``expect``; ``args`` are the step's other keys."""

    number: int  # 1-based, in file order
    at: float
    kind: str  # "action" | "expect"
    what: str
    args: dict[str, Any]
    name: str = ""

    def label(self) -> str:
        if self.name:
            return f"step {self.number} ({self.name})"
        details = " ".join(f"{k}={_shown(v)}" for k, v in self.args.items() if k != "within_s")
        within = f" within {self.args['within_s']:g} s" if "within_s" in self.args else ""
        verb = "expect " if self.kind == "expect" else ""
        return f"step {self.number} ({verb}{self.what} {details}{within})".replace("  ", " ")


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(slots=True)
class Scenario:
    name: str
    path: Path
    steps: list[Step] = field(default_factory=list)


def load_scenario(path: str | Path, config: SiteConfig) -> Scenario:
    """Read and check a scenario against ``config``; ``CommandError`` listing every
    problem as ``FILE: steps[N].key: reason``."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"scenario {file}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CommandError(f"scenario {file}: not valid TOML: {exc}") from None
    problems: list[str] = []
    meta = raw.get("scenario", {})
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        problems.append("steps: a scenario needs at least one [[steps]]")
        steps_raw = []
    steps = []
    for i, item in enumerate(steps_raw):
        step, errors = _step(i, item, config)
        problems += [f"steps[{i}].{e}" for e in errors]
        if step is not None:
            steps.append(step)
    if problems:
        raise CommandError("\n".join(f"scenario {file}: {p}" for p in problems))
    name = meta.get("name") if isinstance(meta, dict) else None
    return Scenario(str(name or file.stem), file, steps)


def _step(i: int, item: Any, config: SiteConfig) -> tuple[Step | None, list[str]]:
    if not isinstance(item, dict):
        return None, ["not a table"]
    errors: list[str] = []
    at = item.get("at", 0.0)
    if not isinstance(at, int | float) or isinstance(at, bool) or at < 0:
        errors.append("at: seconds from the start, a number >= 0")
    if ("action" in item) == ("expect" in item):
        return None, [*errors, "action: a step has either `action` or `expect`"]
    kind = "action" if "action" in item else "expect"
    what = item[kind]
    table = ACTIONS if kind == "action" else {k: (e.required, e.optional)
                                             for k, e in EXPECTATIONS.items()}
    if what not in table:
        return None, [*errors, f"{kind}: unknown {kind} {what!r}; one of {', '.join(table)}"]
    required, optional = table[what]
    args = {k: v for k, v in item.items() if k not in COMMON | {kind}}
    errors += [f"{k}: is required for {what}" for k in sorted(required - args.keys())]
    errors += [f"{k}: unknown key for {what}" for k in sorted(args.keys() - required - optional)]
    errors += _values(what, args, config)
    step = Step(i + 1, float(at) if not errors else 0.0, kind, what, args,
                str(item.get("name", "")))
    return (None if errors else step), errors


def _values(what: str, args: dict[str, Any], config: SiteConfig) -> list[str]:
    errors = []
    device = args.get("device")
    if device is not None and config.device(str(device)) is None:
        errors.append(f"device: unknown device {device!r} (not in the site's [[devices]])")
    for key in ("within_s", "seconds"):
        value = args.get(key)
        if key in args and (not isinstance(value, int | float) or not 0 <= value <= 3600):
            errors.append(f"{key}: seconds, a number from 0 to 3600")
    modes = {"hotline": HOTLINE_MODES, "modem": MODEM_MODES, "arc": ARC_MODES}.get(what, ())
    if "mode" in args and str(args["mode"]) not in modes:
        errors.append(f"mode: {what} mode is one of {', '.join(modes)}, not {args['mode']!r}")
    return errors


class ScenarioRunner:
    """Runs a :class:`Scenario` on a started :class:`SimulatedSite`, reporting to ``out``."""

    def __init__(self, site: SimulatedSite, out: TextIO,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.site = site
        self.out = out
        self.clock = clock
        self.failed: Step | None = None

    def run(self, scenario: Scenario) -> bool:
        """True when every step held; stops at the first that did not."""
        self._say(f"Scenario: {scenario.name} ({scenario.path.name}, {len(scenario.steps)} steps)")
        start = self.clock()
        for step in scenario.steps:
            wait = start + step.at - self.clock()
            if wait > 0:
                time.sleep(wait)
            outcome = self._run_step(step)
            mark = " ok " if outcome.ok else "FAIL"
            self._say(f"  [{mark}] +{self.clock() - start:6.2f} s  {step.label()}: {outcome.detail}")
            if not outcome.ok:
                self.failed = step
                self._say(f"FAILED at {step.label()}: {outcome.detail}")
                return False
        self._say(f"PASSED: all {len(scenario.steps)} steps held")
        return True

    def _run_step(self, step: Step) -> Outcome:
        try:
            if step.kind == "expect":
                return EXPECTATIONS[step.what].check(self.site, step.args)
            return Outcome(True, _act(self.site, step.what, step.args))
        except GatewayError as exc:
            return Outcome(False, str(exc))
        except (OSError, TimeoutError) as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}")

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _act(site: SimulatedSite, what: str, a: dict[str, Any]) -> str:
    """Do one action; a short line saying what was done."""
    device = str(a.get("device", ""))
    simple: dict[str, Callable[[str], None]] = {
        "press": site.press, "hold": site.hold, "release": site.release, "reboot": site.reboot}
    if what in simple:
        simple[what](device)
        return f"{what} {device}"
    if what == "silence":
        site.silence(device, bool(a.get("on", True)))
        return f"{device} {'silenced' if a.get('on', True) else 'transmitting again'}"
    elif what == "tamper":
        site.tamper(device, bool(a.get("opened", True)))
    elif what == "drain":
        site.drain(device, int(a.get("mv", DEFAULT_DRAIN_MV)))
    elif what in ("ack", "resolve"):
        by = str(a.get("by", "security-desk"))
        code = getattr(site, what)(device, by, str(a.get("note", "")))
        return f"{what} alarm {code} of {device} by {by}"
    elif what == "drill":
        answer = site.drill(device)
        return f"drill alarm {answer.get('code')} raised on {device}"
    elif what == "wait":
        time.sleep(float(a["seconds"]))
    else:
        return _fault(site, what, a)
    return f"{what} {device}".strip()


def _fault(site: SimulatedSite, what: str, a: dict[str, Any]) -> str:
    faults = site.faults
    if faults is None:
        raise CommandError("the simulated site is not running")
    if what == "noisy":
        return faults.noisy(bool(a["on"]))
    if what == "hotline":
        return faults.hotline_mode(str(a["mode"]), a.get("times"))
    if what == "arc":
        return faults.arc_mode(str(a["mode"]), a.get("times"))
    if what == "modem":
        code = a.get("code")
        return faults.modem_mode(str(a["mode"]), int(code) if code is not None else None,
                                 int(a.get("times", 1)))
    if what == "sms":
        text = str(a["text"])
        if "{code}" in text:
            text = text.replace("{code}", _code_of(site, str(a.get("device", ""))))
        return faults.sms_from(str(a["from"]), text)
    raise CommandError(f"unknown action {what!r}")


def _code_of(site: SimulatedSite, device: str) -> str:
    """The code of ``device``'s latest alarm (for ``text = "OK {code}"``)."""
    if not device or site.observer is None:
        raise CommandError("`{code}` in an SMS text needs the step's `device`")
    alarm = site.observer.alarm_for(device)
    if alarm is None:
        raise CommandError(f"no alarm for {device} yet, so no code to reply with")
    return str(alarm.get("code"))
