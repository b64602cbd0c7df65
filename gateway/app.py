"""The composition root: builds every part from the config and runs them in one TaskGroup.

Nothing else wires parts together. Constructors only assign; :meth:`Gateway.run` opens the
journal, claims the hardware, then runs the broker link, the inputs, health and housekeeping
until ``stop`` is set (SIGTERM, Ctrl-C), and stops cleanly: ``offline`` published, the
journal flushed and closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.clock import SystemClock
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, InputSource
from gateway.devices.state import DeviceStates
from gateway.features.builders import BUILDERS
from gateway.journal.recorder import Recorder
from gateway.journal.store import Batch, Journal
from gateway.mqtt.link import CONSUMER as MQTT_CONSUMER
from gateway.mqtt.link import MqttLink, settings_from_config
from gateway.ops.control import ControlServer
from gateway.ops.health import HealthReporter
from gateway.paths import JOURNAL_FILE, control_path, storage_dir

log = logging.getLogger(__name__)

class Gateway:
    """One running gateway. ``simulate`` runs GPIO on gpiozero's MockFactory and opens the
    simulation-only control commands (press/release)."""

    def __init__(
        self,
        config: SiteConfig,
        *,
        clock: Clock | None = None,
        simulate: bool = False,
        pin_factory: Any = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.simulate = simulate or config.simulation
        self.pin_factory = pin_factory
        self.journal = Journal(storage_dir(config) / JOURNAL_FILE)
        self.recorder = Recorder(config, self.journal, self.clock)
        self.mqtt = MqttLink(settings_from_config(config), self.journal, self.clock)
        self.control = ControlServer(control_path(config))
        self.health = HealthReporter(self.journal, self.clock, str(storage_dir(config)),
                                     config.health.interval_s)
        self.inputs: list[InputSource] = []
        self.devices: DeviceStates | None = None
        self.gpio: Any = None
        self.serial: Any = None
        #: set by the alarm feature (gateway/alarm_feature.py)
        self.alarm_engine: Any = None
        self.escalation: Any = None
        self.ready = asyncio.Event()
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.consumers: list[str] = [MQTT_CONSUMER]
        #: set by the alarm feature: ``await command_handler(alarm_id, payload, origin)``
        #: validates and applies an ``alarm/<id>/set`` command (MQTT, console, control socket)
        #: and returns ``{"ok": bool, "error"?: str, "alarm"?: dict}``
        self.command_handler: Callable[[str, bytes, str], Coroutine[Any, Any, dict[str, Any]]] | None = None
        #: devices' indicators (GPIO LEDs, serial nodes' LEDs), told of alarm progress
        self.indicators: list[Any] = []

    # -- building ----------------------------------------------------------------------------
    async def _build(self) -> None:
        self.journal.open()
        await self.journal.start()
        self.devices = DeviceStates(self.config, self.journal.kv_all("device:"))
        self.recorder.add_processor(self.devices)
        self._build_gpio()
        self._build_control()
        for build in BUILDERS:
            await build(self)
        self._build_health()

    def _build_gpio(self) -> None:
        from drivers.gpio import GpioInputs

        if not any(d.input == "gpio" for d in self.config.devices):
            return
        factory = self.pin_factory
        if factory is None and self.simulate:
            from gpiozero.pins.mock import MockFactory

            factory = MockFactory()
            self.pin_factory = factory
        self.gpio = GpioInputs(self.config.devices, self.clock, factory)
        self.gpio.open()
        self.inputs.append(self.gpio)
        self.indicators.append(self.gpio)

    def _build_control(self) -> None:
        self.control.register("ping", self._cmd_ping)
        self.control.register("status", self._cmd_status)
        if self.simulate and self.gpio is not None:
            from gateway.features.sim_control import register_sim_commands

            register_sim_commands(self)

    def _build_health(self) -> None:
        self.health.add("broker", self.mqtt.health)
        for consumer in self.consumers:
            self.health.watch_consumer(consumer)
        for source in self.inputs:
            self.health.add(source.name, source.health)

    def add_task(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``factory()`` in the gateway's TaskGroup."""
        self._background.append(factory)

    def add_closer(self, closer: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._closers.append(closer)

    # -- running -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop cleanly."""
        await self._build()
        try:
            await self._announce_start()
            await self.control.start()
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self.mqtt.run(), name="mqtt")]
                for source in self.inputs:
                    tasks.append(tg.create_task(source.run(self.recorder), name=source.name))
                tasks.append(tg.create_task(self.health.run(self._publish_health), name="health"))
                tasks.append(tg.create_task(self._housekeeping(), name="housekeeping"))
                for factory in self._background:
                    tasks.append(tg.create_task(factory()))
                self.ready.set()
                log.info("event=gateway_ready site=%s devices=%d simulate=%s",
                         self.config.site.id, len(self.config.devices), self.simulate)
                await stop.wait()
                log.info("event=gateway_stopping")
                await self.mqtt.close()
                await _cancel_all(tasks)
        finally:
            await self._shutdown()

    async def _announce_start(self) -> None:
        assert self.devices is not None
        await self.recorder.record(EventDraft(EventType.GATEWAY_START, detail={"version": _version()}))
        await self.journal.commit(Batch(retained=self.devices.all_documents()))

    async def _publish_health(self, doc: str) -> bool:
        return await self.mqtt.publish_now("gateway/health", doc, retain=True)

    async def _housekeeping(self) -> None:
        """Prune delivered events past retention, hourly."""
        while True:
            horizon = self.clock.wall() - self.config.storage.retention_days * 86400
            try:
                removed = await asyncio.to_thread(self.journal.prune, horizon, self.consumers)
                if removed:
                    log.info("event=journal_pruned removed=%d", removed)
            except Exception as exc:
                log.error("event=journal_prune_failed error=%r", str(exc))
            await asyncio.sleep(3600)

    async def _shutdown(self) -> None:
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("event=closer_failed")
        await self.control.stop()
        if self.gpio is not None:
            self.gpio.close()
        await self.journal.stop()
        self.journal.close()
        log.info("event=gateway_stopped")

    async def _cmd_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "site": self.config.site.id}

    async def _cmd_status(self, request: dict[str, Any]) -> dict[str, Any]:
        """What ``alarm-gateway status`` shows: the health document, the devices that are
        not normal, and the open alarms."""
        return {"health": self.health.document(), "site": self.config.site.id,
                "devices": self._devices_needing_care(), "alarms": self._open_alarms()}

    def _devices_needing_care(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for dev in self.config.devices:
            flags = self.devices.flags(dev.id) if self.devices is not None else None
            if flags is not None and flags.state != "normal":
                out[dev.id] = {"state": flags.state, "offline": flags.offline,
                               "tamper": flags.tamper, "low_battery": flags.low_battery,
                               "battery_mv": flags.battery_mv, "ward": dev.ward}
        return out

    def _open_alarms(self) -> list[dict[str, Any]]:
        engine = self.alarm_engine
        if engine is None or not hasattr(engine, "open_alarms"):
            return []
        keep = ("code", "state", "type", "device", "ward", "drill", "raised_at")
        return [{k: a.document().get(k) for k in keep} for a in engine.open_alarms()]


async def _cancel_all(tasks: list[asyncio.Task[Any]], within_s: float = 5.0) -> None:
    """Cancel every task, and cancel again any that is still running: on Python 3.11 a
    library's ``asyncio.wait_for`` can swallow a cancellation that races its result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        pending = [t for t in tasks if not t.done()]
        if not pending or loop.time() > deadline:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.2)


def _version() -> str:
    from gateway import __version__

    return __version__
