"""Rewrite old module paths to the package layout of 2026-11 (see README, "Where to change what").

Usage: python tools/rewrite_imports.py FILE_OR_DIR ...  (rewrites .py files in place)
Kept in the repository so a branch started before the layout can follow it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MOVES: dict[str, str] = {
    "gateway.clock": "gateway.core.clock",
    "gateway.errors": "gateway.core.errors",
    "gateway.events": "gateway.core.events",
    "gateway.ports": "gateway.core.ports",
    "gateway.config_checks": "gateway.config.checks",
    "gateway.config": "gateway.config.schema",
    "gateway.journal_reader": "gateway.journal.reader",
    "gateway.journal": "gateway.journal.store",
    "gateway.recorder": "gateway.journal.recorder",
    "gateway.device_state": "gateway.devices.state",
    "gateway.alarm_model": "gateway.alarms.model",
    "gateway.alarm_feature": "gateway.features.alarms",
    "gateway.alarms": "gateway.alarms.engine",
    "gateway.policy": "gateway.alarms.policy",
    "gateway.commands": "gateway.alarms.commands",
    "gateway.drill": "gateway.alarms.drill",
    "gateway.escalation.plan": "gateway.alarms.plan",
    "gateway.serial_feature": "gateway.features.serial",
    "gateway.console.feature": "gateway.features.console",
    "gateway.extensions": "gateway.features.builders",
    "gateway.messages": "gateway.escalation.messages",
    "gateway.escalation.model": "gateway.escalation.wire",
    "gateway.bus_logic": "gateway.serialbus.logic",
    "gateway.registry": "gateway.serialbus.registry",
    "gateway.enroll": "gateway.serialbus.enroll",
    "gateway.homeassistant": "gateway.mqtt.homeassistant",
    "gateway.mqtt": "gateway.mqtt.link",
    "gateway.health": "gateway.ops.health",
    "gateway.sdnotify": "gateway.ops.sdnotify",
    "gateway.control": "gateway.ops.control",
    "gateway.logs": "gateway.ops.logs",
    "gateway.operations": "gateway.features.operations",
    "gateway.sim_control": "gateway.features.sim_control",
    "gateway.demo": "simulator.demo",
    "gateway.ops.operations": "gateway.features.operations",
    "gateway.ops.sim_control": "gateway.features.sim_control",
    "drivers.serialbus": "gateway.serialbus.bus",
}

# longest first, and never rewrite a name that is already a new path
_ORDER = sorted(MOVES, key=len, reverse=True)
_NEW = set(MOVES.values())
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(m) for m in _ORDER) + r")\b(?![\w])(\.\w+)?")


_ROOT = Path(__file__).resolve().parents[1]


def _is_new_package(name: str) -> bool:
    """``gateway.alarms`` is both an old module and a new package: leave the package alone."""
    return (_ROOT / name.replace(".", "/") / "__init__.py").exists()


def _exists(module: str) -> bool:
    path = _ROOT / module.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _replace(match: re.Match[str]) -> str:
    old, tail = match.group(1), match.group(2) or ""
    if old + tail in _NEW or any(n.startswith(old + tail + ".") for n in _NEW if tail):
        return match.group(0)
    if tail and _exists(old + tail):
        return match.group(0)
    if _is_new_package(old):
        after = match.string[match.end():match.end() + 200]
        imported = re.match(r"\s+import\s+\(?\s*([\w ,\n]+)", after)
        names = [n.split(" as ")[0].strip() for n in imported.group(1).split(",")] if imported else []
        base = _ROOT / old.replace(".", "/")
        if names and all((base / f"{n}.py").exists() or (base / n).is_dir() for n in names if n):
            return match.group(0)
        if not imported and match.string[match.start() - 1:match.start()] in ("`", "'", '"'):
            return match.group(0)
    return MOVES[old] + tail


def rewrite(text: str) -> str:
    return _PATTERN.sub(_replace, text)


def main(argv: list[str]) -> int:
    for arg in argv:
        root = Path(arg)
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            if ".venv" in path.parts:
                continue
            old = path.read_text(encoding="utf-8")
            new = rewrite(old)
            if new != old:
                path.write_text(new, encoding="utf-8")
                print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
