"""``alarm-gateway simulate -c FILE [--scenario FILE]``: the technician's simulator.

Brings up a :class:`~simulator.rig.SimulatedSite` for the gateway of FILE, then either
runs a scenario unattended (exit 0 when every step held, 1 with the failed step named) or
opens the interactive console (:mod:`simulator.console`). A gateway already running on the
same storage folder is refused: two gateways on one site's broker would fight over its
retained topics. Design and safety: ``docs/simulator.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from gateway.config.schema import SiteConfig
from gateway.ops.control import request_sync
from gateway.paths import control_path
from simulator.derive import SimulationError, tighten_secrets
from simulator.rig import SimulatedSite

EXIT_OK, EXIT_FAILED = 0, 1

__all__ = ["run_simulate", "tighten_secrets"]


def run_simulate(
    config: SiteConfig,
    scenario: str | os.PathLike[str] | None = None,
    *,
    mqtt_url: str | None = None,
    start_gateway: bool = True,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Simulate ``config``'s hardware; run ``scenario`` or the console. ``mqtt_url``
    replaces the site's broker; ``start_gateway=False`` prints the command to start it.
    Raises ``CommandError`` for a bad scenario file (exit 2), ``SimulationError`` when the
    site cannot be simulated (exit 1)."""
    from simulator.scenario import ScenarioRunner, load_scenario

    out = stdout or sys.stdout
    plan = load_scenario(Path(scenario), config) if scenario is not None else None
    _refuse_running_gateway(config)
    site = SimulatedSite(config, mqtt_url=mqtt_url, start_gateway=start_gateway)
    try:
        site.start()
    except ConnectionError as exc:
        raise SimulationError(str(exc)) from exc
    try:
        _banner(site, out)
        if plan is not None:
            return EXIT_OK if ScenarioRunner(site, out).run(plan) else EXIT_FAILED
        from simulator.console import SimConsole

        SimConsole(site, stdin=stdin, stdout=out).cmdloop()
        return EXIT_OK
    finally:
        site.stop()


def _refuse_running_gateway(config: SiteConfig) -> None:
    path = control_path(config)
    if not path.exists():
        return
    try:
        answer = request_sync(path, {"cmd": "ping"}, timeout=2.0)
    except (OSError, TimeoutError, ValueError):
        return  # a stale socket: nobody is there
    if answer.get("ok"):
        raise SimulationError(f"a gateway is running for this site ({path}): stop it first "
                              "(systemctl stop alarm-gateway), a simulator would share its broker")


def _banner(site: SimulatedSite, out: TextIO) -> None:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(f"Simulating {site.config.site.name} ({site.config.site.id}): "
        f"{len(site.config.devices)} devices, nothing real is contacted")
    say(f"  derived config  {site.derived_path}")
    if site.bus is not None:
        say(f"  serial nodes    {site.bus.port} ({len(site.bus.nodes)} nodes)")
    if site.modem is not None:
        say(f"  modem           {site.modem.port}")
    if site.hotline is not None:
        say(f"  police hotline  {site.hotline.url}")
    say(f"  MQTT broker     {site.mqtt_shown}")
    console = site.console_url
    say(f"  desk console    {console}" if console else
        "  desk console    none (the site file has no [console])")
    if site.gateway_running:
        say(f"  gateway log     {site.gateway_log}")
    else:
        say("  start the gateway yourself with:")
        say("    " + " ".join(site.gateway_command))
