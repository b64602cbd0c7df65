"""Wires the serial bus (button nodes on a UART) into the gateway, from ``[serial]``.

Adds the bus as an input source and as an indicator (STATE frames to nodes' LEDs), and the
control commands ``nodes`` and ``enroll`` that ``alarm-gateway enroll`` uses while the
gateway runs (the registry belongs to the running process; a second writer would race it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from gateway.core.errors import CommandError
from gateway.paths import registry_path
from gateway.serialbus.enroll import enrollment_problem, node_listing

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

async def build_serial(gw: Gateway) -> None:
    """The serial node bus of ``[serial]``: its inputs, LEDs, health and enrolment."""
    from gateway.serialbus.bus import BusNode, BusSettings, SerialBus
    from gateway.serialbus.logic import SEQ_KEY, AcceptedSeqs
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
    stored = gw.journal.kv_all(SEQ_KEY)
    journal_seqs = {int(key[len(SEQ_KEY):]): int(seq) for key, seq in stored.items()}
    bus = SerialBus(settings, nodes, registry, gw.clock, journal_seqs=journal_seqs)
    gw.recorder.add_processor(AcceptedSeqs())
    await asyncio.to_thread(bus.load_keys)  # a bad key refuses the start (exit 2), one line
    gw.serial = bus
    if gw.devices is not None:
        _refresh_devices_on_heartbeats(gw, bus, gw.devices)
    gw.inputs.append(bus)
    gw.indicators.append(bus)
    _register_commands(gw, registry, bus)

    async def close_registry() -> None:
        await asyncio.to_thread(registry.close)

    gw.add_closer(close_registry)


def _refresh_devices_on_heartbeats(gw: Gateway, bus: Any, devices: Any) -> None:
    """Heartbeats refresh ``device/<id>/state`` (last seen, battery) without an event:
    noted as they come, committed together with the registry's flush (every 15 min),
    only for the devices where it says something new (gateway.devices.state)."""
    from gateway.journal.store import Batch

    bus.on_heartbeat = devices.note_seen

    async def commit_refreshed() -> None:
        retained, kv = devices.take_refreshed()
        if not retained:
            return
        try:
            await gw.journal.commit(Batch(retained=retained, kv=kv))
        except Exception as exc:  # the next flush offers them again
            log.error("event=device_refresh_failed devices=%d error=%r", len(retained), str(exc))
            devices.refresh_again([key.split("/")[1] for key in retained])

    bus.on_flush = commit_refreshed


def _register_commands(gw: Gateway, registry: Any, bus: Any) -> None:
    async def nodes(request: dict[str, Any]) -> dict[str, Any]:
        return node_listing(registry, bus.records())

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
