"""``alarm-gateway modem -c FILE identify | signal | send NUMBER TEXT | inbox`` (the verb lives
in the composition layer: its direct mode opens the modem driver).

What a technician with gammu would type (``gammu identify``, ``gammu networkinfo``,
``gammu sendsms``, ``gammu getallsms``), for the site's own modem: through the running
gateway when it owns the port (its control socket), directly when no gateway runs
(:mod:`gateway.features.modem_tools`). Exit 0 done, 1 the modem failed (the reason in one
line), 2 bad usage or no ``[modem]`` in the config.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.cli_events import _zone
from gateway.config.schema import SiteConfig, load_config
from gateway.core.clock import parse_rfc3339
from gateway.core.errors import CommandError
from gateway.journal.reader import EventQuery, read_page
from gateway.ops.control import request_sync
from gateway.ops.locate import locate
from gateway.paths import control_path, journal_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
INBOX_JOURNAL_N = 10


def add_modem_verb(verb: Callable[..., argparse.ArgumentParser]) -> dict[str, Any]:
    """Add ``modem`` and its operations; return its handler."""
    p = verb("modem", "the site's modem: identify, signal, send a test SMS, inbox")
    ops = p.add_subparsers(dest="op", required=True, metavar="OP")
    ops.add_parser("identify", help="manufacturer, model, IMEI, SIM (IMSI, ICCID), operator")
    ops.add_parser("signal", help="registration, technology, operator and signal now")
    send = ops.add_parser("send", help="send a test SMS")
    send.add_argument("number", metavar="NUMBER", help="e.g. +84912000113 or 0912000113")
    send.add_argument("text", metavar="TEXT", nargs="+", help="the message")
    ops.add_parser("inbox", help="messages on the SIM, and the last ones the gateway received")
    p.add_argument("--json", action="store_true", help="the answer as JSON")
    return {"modem": cmd_modem}


def cmd_modem(args: argparse.Namespace) -> int:
    """One operation, through the running gateway or directly on the port."""
    config = load_config(args.config)
    if config.modem is None:
        raise CommandError(f"{args.config} has no [modem] section")
    request: dict[str, Any] = {"cmd": "modem", "op": args.op}
    if args.op == "send":
        request |= {"number": args.number, "text": " ".join(args.text)}
    target = locate(config)
    if target.note:
        print(f"alarm-gateway: {target.note}", file=sys.stderr)
    via = "through the running gateway" if target.running else "directly (no gateway runs)"
    try:
        if target.running:
            answer = request_sync(control_path(target.config), request, timeout=90.0)
            if not answer.get("ok"):
                raise CommandError(str(answer.get("error")))
        else:
            from gateway.features.modem_tools import run_direct

            answer = run_direct(config, request)
    except CommandError as exc:
        print(f"alarm-gateway: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, TimeoutError) as exc:
        print(f"alarm-gateway: modem {args.op}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    answer.pop("ok", None)
    received = _received(target.config) if args.op == "inbox" and target.running else None
    if args.json:
        print(json.dumps({**answer, **({"received": received} if received is not None else {})},
                         ensure_ascii=False, indent=1))
        return EXIT_OK
    port = target.config.modem.port if target.config.modem else config.modem.port
    print(f"modem on {port}, {via}")
    print(render(args.op, answer, received, config))
    return EXIT_OK


def render(op: str, answer: dict[str, Any], received: list[dict[str, Any]] | None,
           config: SiteConfig) -> str:
    """The answer as gammu users read it: labelled rows."""
    if op == "send":
        sent = answer.get("sent") or {}
        parts = sent.get("parts", 0)
        return (f"sent to {sent.get('number')} in {parts} part{'s' if parts != 1 else ''} "
                f"(network reference {', '.join(map(str, sent.get('refs') or []))})")
    if op == "inbox":
        return _inbox(answer.get("inbox") or [], received, config)
    m = answer.get("modem") or {}
    rows = []
    if op == "identify":
        for key, label in (("manufacturer", "Manufacturer"), ("model", "Model"),
                           ("revision", "Firmware"), ("imei", "IMEI"), ("imsi", "IMSI"),
                           ("iccid", "SIM ICCID")):
            rows.append((label, m.get(key) or "(not answered)"))
    network = "registered" if m.get("registered") else "NOT registered"
    if m.get("registered"):
        network += f", {str(m.get('rat') or '?').upper()}"
        network += ", roaming" if m.get("roaming") else ", home network"
    rssi = m.get("rssi_dbm")
    rows += [("SIM", m.get("sim") or "?"), ("Operator", m.get("operator") or "(none)"),
             ("Network", network),
             ("Signal", f"{rssi} dBm ({m.get('signal')})" if rssi is not None else "unknown")]
    if op == "signal" and m.get("ber") is not None:
        rows.append(("Bit errors", f"class {m['ber']} (0 best, 7 worst)"))
    return "\n".join(f"  {label:<13} {value}" for label, value in rows)


def _inbox(on_sim: list[dict[str, Any]], received: list[dict[str, Any]] | None,
           config: SiteConfig) -> str:
    rows = [f"  On the SIM: {len(on_sim)} message(s)"]
    for m in on_sim:
        part = f" part {m['part']}" if m.get("part") else ""
        rows.append(f"    [{m.get('index')}] {m.get('sent_at') or '?'} from {m.get('from')}"
                    f"{part}: {m.get('text', m.get('error'))}")
    if received is None:
        return "\n".join(rows)
    zone = _zone(config.site.timezone)
    rows.append(f"  Received by the gateway (journaled, then deleted from the SIM), last "
                f"{INBOX_JOURNAL_N}:")
    for e in received:
        d = e.get("detail") or {}
        when = datetime.fromtimestamp(parse_rfc3339(e["ts"]), zone).strftime("%Y-%m-%d %H:%M:%S")
        verdict = f"ignored: {d['ignored']}" if d.get("ignored") else "accepted"
        rows.append(f"    {when} from {d.get('from')}: {d.get('text')!r} -> {verdict}")
    if not received:
        rows.append("    none")
    return "\n".join(rows)


def _received(config: SiteConfig) -> list[dict[str, Any]]:
    journal = journal_path(config)
    if not journal.exists():
        return []
    page = read_page(journal, EventQuery(types=("police_reply",), limit=INBOX_JOURNAL_N))
    return page.events
