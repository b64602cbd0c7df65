"""Simulation-only control commands: press, release and hold GPIO buttons from outside,
and put a fault into one of the gateway's tasks.

Registered only when the gateway runs on gpiozero's MockFactory. A press drives the mock pin
from a worker thread, as lgpio's thread would on a Pi, so the hand-off to the loop is real.
``tasks`` lists the gateway's long-lived tasks; ``fail_task`` (``task``, ``fault``: ``raise``,
``return`` or ``hang``) makes one of them die, end or ignore cancellation, so the tests and a
technician can see the whole gateway stop (exit 1, ``offline``, a ``trouble`` event).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from gateway.core.errors import CommandError
from gateway.core.supervisor import Fault

if TYPE_CHECKING:
    from gateway.app import Gateway


def register_fault_commands(gw: Gateway) -> None:
    """``tasks`` and ``fail_task`` on the control socket of a simulated gateway: the tests
    make a long-lived task fail and check that the whole gateway stops."""
    async def tasks(request: dict[str, Any]) -> dict[str, Any]:
        return {"tasks": gw.supervisor.names, "running": gw.supervisor.running()}

    async def fail_task(request: dict[str, Any]) -> dict[str, Any]:
        name, fault = request.get("task"), request.get("fault", "raise")
        if not isinstance(name, str) or fault not in set(Fault):
            raise CommandError("fail_task needs 'task' (see 'tasks') and 'fault': "
                               + ", ".join(Fault))
        gw.supervisor.inject(name, Fault(fault))
        return {"task": name, "fault": fault}

    gw.control.register("tasks", tasks)
    gw.control.register("fail_task", fail_task)


def register_sim_commands(gw: Gateway) -> None:
    """``press``/``release``/``click``/``leds`` on the control socket of a simulated
    gateway (GPIO through gpiozero's mock pins)."""
    async def drive(request: dict[str, Any], *, pressed: bool) -> dict[str, Any]:
        device = request.get("device")
        dev = gw.config.device(device) if isinstance(device, str) else None
        if dev is None or dev.input != "gpio" or dev.pin is None:
            raise CommandError(f"no GPIO device {device!r}")
        pin = gw.pin_factory.pin(dev.pin)
        active_low = dev.pull_up is True or dev.active_state is False
        level_low = pressed == active_low
        await asyncio.to_thread(pin.drive_low if level_low else pin.drive_high)
        return {"device": dev.id, "pressed": pressed}

    async def press(request: dict[str, Any]) -> dict[str, Any]:
        return await drive(request, pressed=True)

    async def release(request: dict[str, Any]) -> dict[str, Any]:
        return await drive(request, pressed=False)

    async def click(request: dict[str, Any]) -> dict[str, Any]:
        """Press, hold ``seconds`` (default 0.1), release, and wait out the debounce
        lock-out so the next click is a new press, as a finger would."""
        dev = gw.config.device(str(request.get("device")))
        seconds = click_seconds(request.get("seconds", 0.1))
        await drive(request, pressed=True)
        await asyncio.sleep(seconds)
        answer = await drive(request, pressed=False)
        await asyncio.sleep((dev.bounce_ms if dev else 30) / 1000 * 1.5)
        return answer

    async def leds(request: dict[str, Any]) -> dict[str, Any]:
        return {"leds": {d.id: gw.gpio.led(d.id) for d in gw.config.devices if d.input == "gpio"}}

    gw.control.register("press", press)
    gw.control.register("release", release)
    gw.control.register("click", click)
    gw.control.register("leds", leds)


CLICK_MAX_S = 60.0


def click_seconds(value: Any) -> float:
    """How long a ``click`` holds the button (seconds): a finite number from 0 to
    :data:`CLICK_MAX_S`. ``1e308``, NaN or infinity would hold the control connection (and
    the button) for ever; a negative time means nothing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"click: 'seconds' must be a number, not {value!r}")
    if not math.isfinite(value) or not 0 <= value <= CLICK_MAX_S:
        raise CommandError(f"click: 'seconds' must be between 0 and {CLICK_MAX_S:g}, not {value!r}")
    return float(value)
