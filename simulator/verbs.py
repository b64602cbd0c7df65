"""The simulator's verbs of ``alarm-gateway``: ``demo`` and ``simulate``.

They reach the command line through the ``alarm_gateway.verbs`` entry point, so the gateway
never imports the simulator (arrows point one way) and a Pi installed without the ``sim``
extra has no embedded broker to carry.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

VerbAdder = Callable[..., argparse.ArgumentParser]
Handler = Callable[[argparse.Namespace], int]


def register(verb: VerbAdder) -> dict[str, Handler]:
    """Add ``demo`` and ``simulate`` with ``verb(name, help, needs_config=...)``; return
    handlers."""
    demo = verb("demo", "a simulated hospital, from press to police acknowledgement",
                needs_config=False)
    demo.add_argument("--fast", action="store_true", help="shorter pauses between steps")
    simulate = verb("simulate", "simulated hardware for the gateway of FILE")
    simulate.add_argument("--scenario", metavar="FILE", help="run a scenario file unattended")
    simulate.add_argument("--mqtt-url", metavar="URL", help="use this broker (default: an embedded one on 127.0.0.1, "
                          "so the hospital's broker never sees simulated alarms)")
    simulate.add_argument("--no-gateway", action="store_true",
                          help="only the simulated hardware: print the command to start the gateway")
    return {"demo": cmd_demo, "simulate": cmd_simulate}


def register_receiver(verb: VerbAdder) -> dict[str, Handler]:
    """``alarm-receiver demo``: both ends of the hotline (``alarm_receiver.verbs``)."""
    demo = verb("demo", "a receiver and a hospital gateway: from a press to the police's "
                        "'Đã nhận' and back", False)
    demo.add_argument("--fast", action="store_true", help="shorter pauses between steps")
    demo.add_argument("--hold", type=float, default=0, metavar="S",
                      help="keep running this many seconds at the end (to look at the screen)")
    return {"demo": cmd_receiver_demo}


def cmd_receiver_demo(args: argparse.Namespace) -> int:
    from simulator.receiver_demo import run_demo

    return asyncio.run(run_demo(fast=args.fast, hold_s=args.hold))


def cmd_demo(args: argparse.Namespace) -> int:
    from simulator.demo import run_demo

    return asyncio.run(run_demo(fast=args.fast))


def cmd_simulate(args: argparse.Namespace) -> int:
    from gateway.preflight import load_site
    from simulator.cli import run_simulate, tighten_secrets

    for line in tighten_secrets(args.config):  # git does not keep 0600 on example secrets
        print(f"alarm-gateway: {line}", file=sys.stderr)
    return run_simulate(load_site(args.config), args.scenario, mqtt_url=args.mqtt_url,
                        start_gateway=not args.no_gateway)
