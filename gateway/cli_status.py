"""``alarm-gateway status -c FILE [--json]``: the running gateway's state on one screen.

A technician at the Pi should not need an MQTT client to see whether the box is healthy.
The verb asks the running gateway over its control socket (``status``: the health document
plus devices that need care and open alarms), the same facts ``gateway/health`` publishes,
and judges each part: broker connected, modem registered with a signal, hotline not
failing, serial line up, console listening, journal backlog, disk, devices. Exit codes: 0
healthy, 1 trouble (each one named), 2 no gateway answers (or bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.cli_events import _zone
from gateway.config.schema import SiteConfig, load_config
from gateway.core.clock import parse_rfc3339
from gateway.ops.control import request_sync
from gateway.ops.locate import locate
from gateway.paths import control_path

EXIT_HEALTHY, EXIT_TROUBLE, EXIT_NO_GATEWAY = 0, 1, 2
BACKLOG_AGE_TROUBLE_S = 60.0  # an undelivered event older than this is trouble


@dataclass(frozen=True, slots=True)
class Line:
    """One part of the screen: ``ok`` False when it is a trouble."""

    part: str
    ok: bool
    text: str


def add_status_verb(verb: Callable[..., argparse.ArgumentParser]) -> dict[str, Any]:
    """Add ``status`` with ``verb(name, help)``; return its handler."""
    p = verb("status", "the running gateway's state on one screen: exit 0 healthy, "
                       "1 trouble, 2 no gateway")
    p.add_argument("--json", action="store_true", help="the gateway's answer as JSON")
    return {"status": cmd_status}


def cmd_status(args: argparse.Namespace) -> int:
    """Ask the site's running gateway (or its running simulation) and judge each part."""
    config = load_config(args.config)
    target = locate(config)
    if not target.running:
        print(f"alarm-gateway: no gateway answers for site {config.site.id} on "
              f"{control_path(config)}: is it running? (systemctl status alarm-gateway)",
              file=sys.stderr)
        return EXIT_NO_GATEWAY
    if target.note:
        print(f"alarm-gateway: {target.note}", file=sys.stderr)
    try:
        answer = request_sync(control_path(target.config), {"cmd": "status"}, timeout=5.0)
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"alarm-gateway: the gateway did not answer: {exc}", file=sys.stderr)
        return EXIT_NO_GATEWAY
    lines = judge(answer, target.config)
    healthy = all(line.ok for line in lines)
    if args.json:
        answer.pop("ok", None)
        text = json.dumps({**answer, "healthy": healthy,
                           "troubles": [f"{x.part}: {x.text}" for x in lines if not x.ok]},
                          ensure_ascii=False, indent=1)
    else:
        text = render(answer, lines, target.config)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `status | head`: the reader has had enough
        sys.stdout = open("/dev/null", "w")
    return EXIT_HEALTHY if healthy else EXIT_TROUBLE


def judge(answer: dict[str, Any], config: SiteConfig) -> list[Line]:
    """Each part of the gateway, judged from the control socket's ``status`` answer."""
    health: dict[str, Any] = answer.get("health") or {}
    zone = _zone(config.site.timezone)
    out = [_broker(health.get("broker"))]
    for name, part in (("modem", _modem), ("hotline", lambda h: _hotline(h, zone)),
                       ("serial", _serial), ("console", _console)):
        value = health.get(name)
        if isinstance(value, dict) and value.get("configured") is not False:
            out.append(part(value))
    receivers = health.get("receivers")
    if isinstance(receivers, dict) and receivers:
        out.append(_receivers(receivers, zone))
    out.append(_journal(health.get("journal")))
    out.append(_disk(health.get("disk_free_mb"), config.health.disk_free_min_mb))
    out.append(_devices(answer.get("devices") or {}))
    return out


def render(answer: dict[str, Any], lines: list[Line], config: SiteConfig) -> str:
    """The screen: a verdict line, then one line per part, then the open alarms."""
    health: dict[str, Any] = answer.get("health") or {}
    zone = _zone(config.site.timezone)
    troubles = [x for x in lines if not x.ok]
    verdict = "HEALTHY" if not troubles else f"TROUBLE ({len(troubles)})"
    rows = [f"{config.site.name} ({config.site.id}): {verdict}",
            f"  gateway {health.get('version', '?')}, up {_duration(health.get('uptime_s'))}, "
            f"as of {_local(health.get('ts'), zone)} ({config.site.timezone})"]
    rows += [f"  {x.part:<9} {'ok' if x.ok else 'TROUBLE':<8} {x.text}" for x in lines]
    alarms = answer.get("alarms") or []
    rows.append(f"  {'alarms':<9} {len(alarms)} open" if alarms else
                f"  {'alarms':<9} none open")
    for a in alarms:
        drill = " [drill]" if a.get("drill") else ""
        rows.append(f"            {a.get('code')} {a.get('state'):<20} {a.get('type'):<8} "
                    f"{a.get('device')} since {_local(a.get('raised_at'), zone)}{drill}")
    return "\n".join(rows)


# -- the parts ---------------------------------------------------------------------------

def _broker(part: Any) -> Line:
    if not isinstance(part, dict):
        return Line("broker", ok=False, text="unknown")
    if part.get("connected"):
        return Line("broker", ok=True, text=f"{part.get('broker')} connected, "
                                    f"{part.get('published', 0)} published")
    return Line("broker", ok=False, text=f"{part.get('broker')} NOT connected: "
                                 f"{part.get('last_error') or 'connecting'}")


def _modem(part: dict[str, Any]) -> Line:
    bits = [part.get("model") or "", part.get("operator") or ""]
    checking = part.get("registration_known") is False
    if part.get("registered"):
        bits.append(f"registered{' (roaming)' if part.get('roaming') else ''} "
                    f"{(part.get('rat') or '').upper()}".rstrip())
    elif checking:
        bits.append("registration not read yet (first poll under way)")
    else:
        bits.append("NOT registered")
    rssi = part.get("rssi_dbm")
    bits.append(f"signal {rssi} dBm" if rssi is not None else "signal unknown")
    bits.append(f"SIM {part.get('sim') or '?'}")
    trouble = list(part.get("trouble") or [])
    ok = bool(part.get("present")) and (bool(part.get("registered")) or checking) \
        and not trouble and part.get("state") in (None, "ok")
    if not part.get("present"):
        bits = [f"not answering on {part.get('port')}: {part.get('last_error') or 'no reply'}"]
    text = ", ".join(b for b in bits if b)
    if trouble:
        text += "; " + ", ".join(map(str, trouble))
    return Line("modem", ok, text)


def _hotline(part: dict[str, Any], zone: Any) -> Line:
    failures = int(part.get("consecutive_failures") or 0)
    last = part.get("delivered_at")
    text = f"last delivered {_local(last, zone)}" if last else "nothing delivered yet"
    text += f", last answer {part.get('last')}" if part.get("last") is not None else ""
    trouble = list(part.get("trouble") or [])
    if failures:
        text += f"; {failures} failure(s) in a row"
    if trouble:
        text += "; " + ", ".join(map(str, trouble))
    return Line("hotline", not failures and not trouble, text)


def _receivers(part: dict[str, Any], zone: Any) -> Line:
    """Each police receiver (HTTP or DC-09): its last delivery and failures in a row, and its
    ack stream's failures."""
    bits, ok = [], True
    for rid, value in sorted(part.items()):
        value = value if isinstance(value, dict) else {}
        delivery: dict[str, Any] = _dict(value.get("delivery"))
        acks: dict[str, Any] = _dict(value.get("acks"))
        last = delivery.get("delivered_at") or delivery.get("last_ack")
        failures = int(delivery.get("consecutive_failures") or 0)
        ack_failures = int(acks.get("failures") or 0)
        text = f"{rid}: " + (f"last delivered {_local(last, zone)}" if isinstance(last, str)
                             else "nothing delivered yet")
        if failures:
            text += f", {failures} failure(s) in a row"
        if ack_failures:
            text += f", ack stream failing ({acks.get('error') or ack_failures})"
        ok = ok and not failures and not ack_failures
        bits.append(text)
    return Line("receivers", ok, "; ".join(bits))


def _serial(part: dict[str, Any]) -> Line:
    ok = part.get("state") in (None, "ok") and part.get("connected", True)
    text = f"{part.get('frames_ok', 0)} frames"
    rejected = part.get("rejected") or {}
    if rejected:
        text += ", rejected " + ", ".join(f"{k} {v}" for k, v in rejected.items())
    if not ok:
        text = f"{part.get('port')}: {part.get('error') or part.get('state')}; " + text
    return Line("serial", bool(ok), text)


def _console(part: dict[str, Any]) -> Line:
    if part.get("listening"):
        return Line("console", ok=True, text=str(part.get("url")))
    return Line("console", ok=False, text=f"not listening: {part.get('error') or 'starting'}")


def _journal(part: Any) -> Line:
    if not isinstance(part, dict):
        return Line("journal", ok=False, text="unknown")
    bits, ok = [f"seq {part.get('last_seq')}"], True
    for name, value in part.items():
        if isinstance(value, dict) and "backlog" in value:
            age = float(value.get("oldest_undelivered_age_s") or 0)
            bits.append(f"{name} backlog {value['backlog']}"
                        + (f" (oldest {age:.0f} s)" if value["backlog"] else ""))
            ok = ok and age < BACKLOG_AGE_TROUBLE_S
    return Line("journal", ok, ", ".join(bits))


def _disk(free: Any, limit: int) -> Line:
    if not isinstance(free, int):
        return Line("disk", ok=False, text="free space unknown")
    return Line("disk", free >= limit, f"{free} MB free (limit {limit} MB)")


def _devices(devices: dict[str, Any]) -> Line:
    if not devices:
        return Line("devices", ok=True, text="all normal")
    words = []
    for dev_id, d in sorted(devices.items()):
        what = [w for w, on in (("alarm", d.get("state") == "alarm"),
                                ("offline", d.get("offline")), ("tamper", d.get("tamper")),
                                ("low battery", d.get("low_battery"))) if on]
        if d.get("low_battery") and d.get("battery_mv"):
            what[-1] += f" {d['battery_mv']} mV"
        words.append(f"{dev_id} {'+'.join(what)}")
    faulty = any(d.get("offline") or d.get("tamper") or d.get("low_battery")
                 for d in devices.values())
    return Line("devices", not faulty, "; ".join(words))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _local(ts: Any, zone: Any) -> str:
    try:
        return datetime.fromtimestamp(parse_rfc3339(str(ts)), zone).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return "?"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    s = int(seconds)
    d, h, m = s // 86400, s // 3600 % 24, s // 60 % 60
    return f"{d} d {h} h" if d else f"{h} h {m} min" if h else f"{m} min {s % 60} s"
