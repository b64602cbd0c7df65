"""``alarm-gateway events``: the journal for people (a table in the site's local time) and
programs (``--json``, one event per line, times as stored: RFC 3339 UTC).

Filters (``--device``, ``--ward``, ``--type``, ``--alarm``, ``--since``) are ANDed. A page is
at most ``--limit`` events (default 1000) and the last line says when more exist and the
exact option that shows them (``--before SEQ`` / ``--after SEQ``): nothing is cut silently.
``--follow`` prints new events as they are committed, like ``journalctl -f``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.schema import SiteConfig, load_config
from gateway.core.errors import CommandError, JournalError
from gateway.core.events import EventType
from gateway.journal.reader import EventQuery, Page, parse_since, read_after, read_page
from gateway.ops.locate import locate, missing_journal_hint
from gateway.paths import journal_path

DEFAULT_LIMIT = 1000
FOLLOW_LIMIT = 10  # like tail -f: the last few, then what comes
FOLLOW_POLL_S = 0.5
DETAIL_WIDTH = 90


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def seq_number(text: str) -> int:
    """An argparse type: an event number (SEQ, 0 or more)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an event number (SEQ)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: event numbers start at 1")
    return value


def add_events_verb(
    verb: Callable[..., argparse.ArgumentParser],
) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add the ``events`` verb through ``verb``; returns its handler by name."""
    p = verb("events", "read the journal: a table in local time, or --json for programs")
    p.add_argument("--since", metavar="WHEN",
                   help="RFC 3339 time, or a duration back from now: 90s, 15m, 2h, 3d")
    p.add_argument("--device", metavar="ID", help="only this device's events")
    p.add_argument("--ward", metavar="ID", help="only this ward's events")
    p.add_argument("--type", metavar="TYPE", action="append", dest="types",
                   help="only these types (repeat, or press,hold,...)")
    p.add_argument("--alarm", metavar="ID|CODE", help="one alarm's events: its id or 4-digit code")
    page = p.add_mutually_exclusive_group()
    page.add_argument("--before", metavar="SEQ", type=seq_number, help="the page before SEQ")
    page.add_argument("--after", metavar="SEQ", type=seq_number, help="the page after SEQ")
    p.add_argument("--limit", metavar="N", type=positive_int,
                   help=f"at most N events (default {DEFAULT_LIMIT}; {FOLLOW_LIMIT} with --follow)")
    p.add_argument("-f", "--follow", action="store_true", help="then print new events as they come")
    p.add_argument("--utc", action="store_true", help="times in UTC, not the site's time zone")
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    return {"events": cmd_events}


def cmd_events(args: argparse.Namespace) -> int:
    """Print journal events (a table, or JSON lines), or follow new ones."""
    target = locate(load_config(args.config))
    if target.note:
        print(f"alarm-gateway: {target.note}", file=sys.stderr)
    config = target.config
    journal = journal_path(config)
    if not journal.exists():
        hint = missing_journal_hint(config)
        raise JournalError(f"no journal at {journal} (has the gateway run with this config?)"
                           + (f"; {hint}" if hint else ""))
    query = build_query(config, args)
    printer = Printer(config, utc=args.utc, as_json=args.json, out=sys.stdout)
    try:
        page = read_page(journal, query)
        printer.page(page, query, filtered=_filtered(args))
        if args.follow:
            follow(journal, query, page, printer)
    except BrokenPipeError:  # `events | head`: the reader has had enough
        sys.stdout = open("/dev/null", "w")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.device, args.ward, args.types, args.alarm, args.since))


def build_query(config: SiteConfig, args: argparse.Namespace) -> EventQuery:
    """The query of the options, each checked against the config (a typo is a usage error
    naming what exists, not an empty table)."""
    if args.device and config.device(args.device) is None:
        known = ", ".join(d.id for d in config.devices)
        raise CommandError(f"--device {args.device!r}: no such device; known: {known}")
    wards = [w.id for w in config.wards]
    if args.ward and args.ward not in wards:
        raise CommandError(f"--ward {args.ward!r}: no such ward; known: {', '.join(wards)}")
    types = tuple(t.strip() for group in args.types or () for t in group.split(",") if t.strip())
    known_types = {t.value for t in EventType}
    for t in types:
        if t not in known_types:
            raise CommandError(f"--type {t!r}: no such event type; known: "
                               + ", ".join(sorted(known_types)))
    default = FOLLOW_LIMIT if args.follow and not (args.since or args.after or args.before) \
        else DEFAULT_LIMIT
    return EventQuery(since=parse_since(args.since, time.time()), device=args.device,
                      ward=args.ward, types=types, alarm=args.alarm, after=args.after,
                      before=args.before, limit=args.limit or default)


def follow(journal: Path, query: EventQuery, page: Page, printer: Printer) -> None:
    """Print events committed from now on, until Ctrl-C."""
    from gateway.journal.reader import last_seq

    seq = int(page.events[-1]["seq"]) if page.events and not page.later else last_seq(journal)
    printer.note("following new events (Ctrl-C to stop)")
    while True:
        for event in read_after(journal, query, seq):
            printer.event(event)
            seq = int(event["seq"])
        printer.flush()
        time.sleep(FOLLOW_POLL_S)


class Printer:
    """Events as a table (local time by default) or JSON lines; notes go where a person
    reads them and a program does not (stderr for JSON)."""

    def __init__(self, config: SiteConfig, *, utc: bool, as_json: bool, out: TextIO) -> None:
        self.as_json, self.out = as_json, out
        self.zone: tzinfo = UTC if utc else _zone(config.site.timezone)
        self.zone_name = "UTC" if utc else config.site.timezone
        self._header_done = False

    def page(self, page: Page, query: EventQuery, *, filtered: bool) -> None:
        for event in page.events:
            self.event(event)
        if not page.events:
            self.note("no events match" + (" these filters" if filtered else ""))
            return
        first, last = page.events[0]["seq"], page.events[-1]["seq"]
        count = len(page.events)
        self.note((f"1 event, seq {first}" if count == 1 else f"{count} events, seq {first}–{last}")
                  + (f"; earlier ones: --before {first}" if page.earlier else "")
                  + (f"; later ones: --after {last}" if page.later else ""))
        self.flush()

    def event(self, e: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(e, ensure_ascii=False), file=self.out)
            return
        if not self._header_done:
            print(f"{'SEQ':>7}  {'TIME (' + self.zone_name + ')':<23}  {'TYPE':<20}  "
                  f"{'DEVICE':<16}  {'WARD':<12}  DETAIL", file=self.out)
            self._header_done = True
        print(f"{e.get('seq', ''):>7}  {self.when(e.get('ts')):<23}  {e.get('type', ''):<20}  "
              f"{e.get('device') or '-':<16}  {e.get('ward') or '-':<12}  {_detail(e)}",
              file=self.out)

    def when(self, ts: Any) -> str:
        try:
            moment = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        except ValueError:
            return str(ts)
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    def note(self, text: str) -> None:
        print(f"({text})", file=sys.stderr if self.as_json else self.out)

    def flush(self) -> None:
        self.out.flush()


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _detail(e: dict[str, Any]) -> str:
    parts = ["[drill]"] if e.get("drill") else []
    detail = e.get("detail")
    if isinstance(detail, dict):
        parts += [f"{k}={_short(v)}" for k, v in detail.items() if v not in (None, "", [], {})]
    elif detail:
        parts.append(_short(detail))
    if e.get("value") not in (None, 0, ""):
        parts.insert(0, f"value={e['value']}")
    if isinstance(e.get("alarm_id"), str):
        parts.insert(0, f"alarm={e['alarm_id'][:8]}")
    text = " ".join(parts)
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
