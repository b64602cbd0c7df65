"""``alarm-receiver``: argument parsing and one-line errors; no logic lives here.

Exit codes as the gateway's (SPEC §5): 0 done, 1 failed at run time, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from gateway.core.clock import rfc3339
from gateway.core.errors import CommandError, ConfigError, GatewayError
from receiver.config import load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROG = "alarm-receiver"
#: verbs added by installed packages (the simulator adds ``demo``, which drives a gateway
#: too): an entry point ``register(verb) -> {name: handler}``, so the receiver never imports
#: the simulator nor the gateway's composition
PLUGIN_GROUP = "alarm_receiver.verbs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Police alarm receiver: hospitals' alarms on the duty "
                               "officer's wall screen, acknowledgements back.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_text: str, needs_config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if needs_config:
            p.add_argument("-c", "--config", required=True, metavar="FILE",
                           help="receiver TOML file")
        return p

    verb("run", "run the receiver")
    verb("check-config", "validate the config: exit 0, or 2 with one line per error")
    events = verb("events", "read the receiver's journal (a table, or --json)")
    events.add_argument("--since", metavar="WHEN",
                        help="RFC 3339 time, or a duration back from now: 90s, 15m, 2h, 3d")
    events.add_argument("--json", action="store_true", help="one JSON event per line")
    events.add_argument("--limit", type=int, default=1000, help="at most this many")
    verb("hash-password", "read a password and print its argon2id hash for [[officers]]", False)
    report = verb("report", "the month across the hospitals: alarms, police response, link "
                            "losses, drills (HTML, PDF)")
    report.add_argument("--month", metavar="YYYY-MM", help="default: the previous month")
    report.add_argument("-o", "--output", metavar="FILE", type=Path, help="HTML file to write")
    report.add_argument("--pdf", metavar="FILE", type=Path, help="PDF file to write (A4)")
    report.add_argument("--out-dir", metavar="DIR", type=Path,
                        help="write <receiver>-report-<YYYY-MM>.html and .pdf into DIR")
    report.add_argument("--lang", choices=("vi", "en"), default="vi", help="language (default: vi)")
    for plugin in entry_points(group=PLUGIN_GROUP):
        _VERBS.update(plugin.load()(verb))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.debug)
    try:
        return _VERBS[args.verb](args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"{PROG}: config error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        if args.debug:
            raise
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for line in exc.lines():
            print(line)
        return EXIT_USAGE
    print(f"{args.config}: OK ({len(config.sites)} sites, {len(config.officers)} officers)")
    if not config.officers:
        print("warning: no [[officers]]: nobody can log in to the wall screen")
    for name, listener in (("api", config.api), ("screen", config.screen)):
        if not listener.tls_cert and not listener.listen.startswith(("127.", "[::1]", "localhost")):
            print(f"warning: {name}.listen {listener.listen} is plain HTTP beyond this machine")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from receiver.app import Receiver

    receiver = Receiver(load_config(args.config))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await receiver.run(stop)

    asyncio.run(serve())
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    from receiver.journal_reader import print_events

    return print_events(load_config(args.config), since=args.since, as_json=args.json,
                        limit=args.limit)


def cmd_report(args: argparse.Namespace) -> int:
    from receiver.report_page import run_station_report

    return run_station_report(load_config(args.config), args.month, args.output, args.pdf,
                              args.out_dir, args.lang)


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Read a password (twice from a terminal, else the first stdin line); print its hash."""
    from receiver.screen.auth import MAX_PASSWORD_CHARS

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print(f"{PROG}: the two passwords differ", file=sys.stderr)
            return EXIT_USAGE
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password or len(password) > MAX_PASSWORD_CHARS:
        print(f"{PROG}: the password must be 1 to {MAX_PASSWORD_CHARS} characters",
              file=sys.stderr)
        return EXIT_USAGE
    from argon2 import PasswordHasher

    print(PasswordHasher().hash(password))
    return EXIT_OK


def _setup_logging(debug: bool) -> None:
    class _Format(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            line = (f"ts={rfc3339(record.created)} level={record.levelname.lower()} "
                    f"logger={record.name} {record.getMessage()}")
            if record.exc_info:
                line += " traceback=" + repr(self.formatException(record.exc_info))
            return line

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Format())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("asyncio", "aiohttp.access", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "check-config": cmd_check_config,
    "events": cmd_events,
    "hash-password": cmd_hash_password,
    "report": cmd_report,
}


if __name__ == "__main__":
    sys.exit(main())
