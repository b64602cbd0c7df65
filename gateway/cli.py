"""``alarm-gateway``: argument parsing and one-line errors; no logic lives here.

Exit codes (SPEC §5): 0 done, 1 failed at run time, 2 bad usage or bad config. Errors are one
line each, never a traceback, unless ``--debug``. Every file the gateway creates is
owner-only (umask 0o077). A reader that stops reading (``alarm-gateway events | head``) ends
the output quietly, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from gateway import __version__
from gateway.config.schema import SiteConfig
from gateway.core.errors import CommandError, ConfigError, GatewayError, StartRefused

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: verbs added by installed packages (the simulator adds ``demo`` and ``simulate``): an entry
#: point ``register(verb) -> {name: handler}``, so the gateway never imports the simulator
PLUGIN_GROUP = "alarm_gateway.verbs"


def build_parser() -> argparse.ArgumentParser:
    """The ``alarm-gateway`` verbs, including those installed packages add."""
    parser = argparse.ArgumentParser(
        prog="alarm-gateway",
        description="Ward alarm gateway: panic buttons to the security desk and the police.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"alarm-gateway {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_text: str, *, needs_config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if needs_config:
            p.add_argument("-c", "--config", required=True, metavar="FILE", help="site TOML file")
        return p

    run = verb("run", "run the gateway")
    run.add_argument("--simulate", action="store_true",
                     help="GPIO on gpiozero's MockFactory, driven through the control socket")
    run.add_argument("--new-journal", action="store_true",
                     help="start an empty journal when this storage's journal is missing or "
                          "damaged (a damaged one is kept, renamed); a healthy one is kept")
    verb("check-config", "validate the config: exit 0, or 2 with one line per error")
    drill = verb("drill", "ask the running gateway to raise a drill alarm end to end")
    drill.add_argument("--device", metavar="ID", help="device to raise it for (default: first)")
    enroll = verb("enroll", "enroll a serial button node")
    enroll.add_argument("--node", type=int, help="node id (default: the pending unknown node)")
    enroll.add_argument("--device", metavar="ID", help="the configured device it becomes")
    enroll.add_argument("--list", action="store_true", help="list enrolled and pending nodes")
    enroll.add_argument("--wait", type=float, default=0,
                        help="seconds to wait for an unknown node's BOOT (learn mode)")
    verb("hash-password", "read a password and print its argon2id hash for [[console.users]]",
         needs_config=False)
    for add in _verb_modules():
        _VERBS.update(add(verb))
    for plugin in entry_points(group=PLUGIN_GROUP):
        _VERBS.update(plugin.load()(verb))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; the exit code (0 ok, 1 failed, 2 usage or config) is returned."""
    os.umask(0o077)  # the journal, registry, sockets and lock file: owner-only
    parser = build_parser()
    args = parser.parse_args(argv)
    from gateway.ops.logs import setup_logging

    setup_logging(debug=args.debug)
    handler = _VERBS[args.verb]
    try:
        return _handle(handler, args)
    except BrokenPipeError:
        return _reader_gone()


def _handle(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"alarm-gateway: config error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (CommandError, StartRefused) as exc:
        print(f"alarm-gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        if args.debug:
            raise
        print(f"alarm-gateway: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        if args.debug:
            raise
        print(f"alarm-gateway: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _reader_gone() -> int:
    """The reader of stdout has gone (``| head``): point stdout at /dev/null so the interpreter's
    last flush cannot fail again, and end quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


def _load(args: argparse.Namespace) -> SiteConfig:
    from gateway.preflight import load_site

    return load_site(args.config)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print every config problem (exit 2), else OK and when duress goes to the police."""
    try:
        config = _load(args)
    except ConfigError as exc:
        for line in exc.lines():
            print(line)
        return EXIT_USAGE
    print(f"{args.config}: OK ({len(config.wards)} wards, {len(config.devices)} devices)")
    from gateway.alarms.policy import duress_summary

    for line in duress_summary(config):
        print(line)
    if config.escalation.sms is not None:
        from gateway.escalation.sms_check import report

        print("\n".join(report(config)))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the gateway until SIGTERM/SIGINT."""
    config = _load(args)
    from gateway.app import Gateway
    from gateway.ops.stopping import run_until_signal

    gateway = Gateway(config, simulate=args.simulate, new_journal=args.new_journal)

    async def run(stop: asyncio.Event) -> None:
        settle = asyncio.create_task(_settle_heap(gateway.ready))
        try:
            await gateway.run(stop)
        finally:
            settle.cancel()

    return asyncio.run(run_until_signal(run, gateway.stopping))


async def _settle_heap(ready: asyncio.Event) -> None:
    """Once the gateway runs, move everything it built (modules, config, parts) out of the
    garbage collector's sight (``gc.freeze``): a full collection then scans only what came
    later, so a flood of console requests costs the alarm path milliseconds of collection
    pauses, not a quarter of a second."""
    await ready.wait()
    gc.collect()
    gc.freeze()


def cmd_drill(args: argparse.Namespace) -> int:
    """Ask the running gateway to raise a drill alarm end to end."""
    from gateway.alarms.drill import request_drill
    from gateway.ops.locate import locate

    target = locate(_load(args))
    if target.note:
        print(f"alarm-gateway: {target.note}", file=sys.stderr)
    return request_drill(target.config, args.device)


def cmd_enroll(args: argparse.Namespace) -> int:
    """List, learn or enroll serial button nodes."""
    from gateway.serialbus.enroll import run_enroll

    return run_enroll(_load(args), args)


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Read a password (twice, unechoed) and print its argon2id hash for the config."""
    from gateway.console.auth import run_hash_password

    return run_hash_password(args)


_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "check-config": cmd_check_config,
    "drill": cmd_drill,
    "enroll": cmd_enroll,
    "hash-password": cmd_hash_password,
}


def _verb_modules() -> list[Callable[..., dict[str, Callable[[argparse.Namespace], int]]]]:
    """Verbs kept in their own modules (cli.py stays small): each adds its parsers with
    ``verb(name, help, needs_config)`` and returns its handlers."""
    from gateway.cli_backup import add_backup_verbs
    from gateway.cli_events import add_events_verb
    from gateway.cli_status import add_status_verb
    from gateway.features.modem_cli import add_modem_verb
    from gateway.report.verb import add_report_verb

    return [add_events_verb, add_report_verb, add_status_verb, add_modem_verb, add_backup_verbs]


if __name__ == "__main__":
    sys.exit(main())
