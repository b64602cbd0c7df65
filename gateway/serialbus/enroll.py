"""``alarm-gateway enroll``: add a serial button node, the way a technician works.

1. ``enroll -c FILE --list`` shows enrolled nodes and *pending* ones: unknown nodes heard
   sending ``BOOT`` (learn mode is always on; a node sends BOOT when powered up).
2. ``enroll -c FILE --wait 120`` waits for the next unknown node to boot and shows its id.
3. Add the device to the config (``input = "serial"``, ``node = N``, optional ``key_file``),
   then ``enroll -c FILE --node N --device ID`` binds it (replay state starts fresh).

While the gateway runs, this goes through its control socket (the registry belongs to the
running process); otherwise it opens the registry file itself.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.clock import SystemClock, rfc3339
from gateway.core.errors import CommandError, GatewayError
from gateway.ops.control import request_sync
from gateway.paths import control_path, registry_path


def _ask(config: SiteConfig, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The running gateway's answer, or None when no gateway runs."""
    try:
        answer = request_sync(control_path(config), payload, timeout=5)
    except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
        return None
    if not answer.get("ok"):
        raise CommandError(str(answer.get("error")))
    return answer


def _listing(config: SiteConfig) -> dict[str, Any]:
    answer = _ask(config, {"cmd": "nodes"})
    if answer is not None:
        return answer
    from gateway.serialbus.registry import Registry

    registry = Registry(registry_path(config), SystemClock())
    try:
        return node_listing(registry)
    finally:
        registry.close()


def _enroll(config: SiteConfig, node: int, device: str) -> dict[str, Any]:

    problem = enrollment_problem(config, node, device)
    if problem:
        raise CommandError(problem)
    answer = _ask(config, {"cmd": "enroll", "node": node, "device": device})
    if answer is not None:
        return dict(answer["enrolled"])
    from dataclasses import asdict

    from gateway.serialbus.registry import Registry

    dev = config.device(device)
    key_ref = str(config.resolve(dev.key_file)) if dev and dev.key_file else None
    registry = Registry(registry_path(config), SystemClock())
    try:
        return asdict(registry.enroll(node, device, key_ref))
    finally:
        registry.close()


def _print_listing(listing: dict[str, Any]) -> None:
    print("enrolled nodes:")
    for r in listing["enrolled"] or []:
        seen = rfc3339(r["last_seen"]) if r.get("last_seen") else "never"
        print(f"  node {r['node']:>5} → {r['device']:<16} keyed={bool(r.get('key_ref'))} "
              f"last seq={r.get('last_seq')} last seen={seen} battery={r.get('batt_mv')} mV")
    print("pending (unknown nodes heard sending BOOT):")
    for p in listing["pending"] or []:
        print(f"  node {p['node']:>5}  boots={p['boots']} last seen={rfc3339(p['last_seen'])} "
              f"battery={p['batt_mv']} mV")


def _wait_for_new(config: SiteConfig, seconds: float) -> int | None:
    known = {p["node"] for p in _listing(config)["pending"]}
    deadline = time.monotonic() + seconds
    print(f"learn mode: power the node up now (waiting up to {seconds:.0f} s)…", flush=True)
    while time.monotonic() < deadline:
        for p in _listing(config)["pending"]:
            if p["node"] not in known:
                print(f"node {p['node']} booted (battery {p['batt_mv']} mV)")
                return int(p["node"])
        time.sleep(0.5)
    return None


def run_enroll(config: SiteConfig, args: argparse.Namespace) -> int:
    """The ``enroll`` verb against the running gateway (or the registry file)."""
    if config.serial is None:
        raise CommandError("this config has no [serial] section: there is no bus to enroll on")
    node = args.node
    if args.wait:
        node = _wait_for_new(config, args.wait)
        if node is None:
            print("no new node booted in time")
            return 1
    if args.list or node is None:
        _print_listing(_listing(config))
        return 0
    if not args.device:
        print(f"add the node to the config, then: alarm-gateway enroll -c … --node {node} --device ID")
        return 0
    try:
        record = _enroll(config, node, args.device)
    except GatewayError:
        raise
    print(f"enrolled node {record['node']} as {record['device']}")
    return 0


def node_listing(registry: Any, live: Mapping[int, Any] | None = None) -> dict[str, Any]:
    """Enrolled and pending nodes; ``live`` (the running bus's records) wins over the
    registry file, which is brought up to date only every few minutes."""
    records = {**registry.records(), **(live or {})}
    return {
        "enrolled": [asdict(r) for _, r in sorted(records.items())],
        "pending": [asdict(p) for p in registry.pending()],
    }


def enrollment_problem(config: SiteConfig, node: int, device: str) -> str | None:
    """Why node ``node`` cannot become ``device`` under this config, or None."""
    dev = config.device(device)
    if dev is None:
        return (f"no device {device!r} in the config: add it first, e.g.\n"
                f"[[devices]]\nid = \"{device}\"\nward = \"…\"\nroom = \"…\"\n"
                f"input = \"serial\"\nnode = {node}")
    if dev.input != "serial":
        return f"device {device!r} is a GPIO device, not a serial node"
    if dev.node != node:
        return f"device {device!r} is configured as node {dev.node}, not {node}: fix devices.node"
    return None
