"""Wires the serial bus (button nodes on a UART) into the gateway, from ``[serial]``.

Adds the bus as an input source and as an indicator (STATE frames to nodes' LEDs), and the
control commands ``nodes`` and ``enroll`` that ``alarm-gateway enroll`` uses while the
gateway runs (the registry belongs to the running process; a second writer would race it).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config.schema import SiteConfig
from gateway.core.errors import CommandError

if TYPE_CHECKING:
    from gateway.app import Gateway

REGISTRY_FILE = "registry.json"


def registry_path(config: SiteConfig) -> Path:
    return config.resolve(config.storage.path) / REGISTRY_FILE


async def build_serial(gw: Gateway) -> None:
    from drivers.serialbus import BusNode, BusSettings, SerialBus
    from gateway.serialbus.registry import Registry

    config = gw.config
    if config.serial is None:
        return
    settings = BusSettings(
        port=config.serial.port,
        baudrate=config.serial.baud,
        low_battery_mv=config.serial.low_battery_mv,
        supervision_s=float(config.serial.supervision_s),
    )
    nodes = [
        BusNode(
            node=d.node,
            device=d.id,
            key_file=str(config.resolve(d.key_file)) if d.key_file else None,
            supervision_s=float(d.supervision_s) if d.supervision_s else None,
        )
        for d in config.devices
        if d.input == "serial" and d.node is not None
    ]
    registry = await asyncio.to_thread(Registry, registry_path(config), gw.clock)
    bus = SerialBus(settings, nodes, registry, gw.clock)
    await asyncio.to_thread(bus.load_keys)  # a bad key refuses the start (exit 2), one line
    gw.serial = bus
    gw.inputs.append(bus)
    gw.indicators.append(bus)
    _register_commands(gw, registry)

    async def close_registry() -> None:
        await asyncio.to_thread(registry.close)

    gw.add_closer(close_registry)


def _register_commands(gw: Gateway, registry: Any) -> None:
    async def nodes(request: dict[str, Any]) -> dict[str, Any]:
        return node_listing(registry)

    async def enroll(request: dict[str, Any]) -> dict[str, Any]:
        node, device = request.get("node"), request.get("device")
        if not isinstance(node, int) or not isinstance(device, str):
            raise CommandError("enroll needs an integer 'node' and a string 'device'")
        problem = enrollment_problem(gw.config, node, device)
        if problem:
            raise CommandError(problem)
        dev = gw.config.device(device)
        key_ref = str(gw.config.resolve(dev.key_file)) if dev and dev.key_file else None
        record = await asyncio.to_thread(registry.enroll, node, device, key_ref)
        return {"enrolled": asdict(record)}

    gw.control.register("nodes", nodes)
    gw.control.register("enroll", enroll)


def node_listing(registry: Any) -> dict[str, Any]:
    return {
        "enrolled": [asdict(r) for r in registry.records().values()],
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
