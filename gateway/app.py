"""The composition root: builds every part from the config and runs them under one supervisor.

Nothing else wires parts together. Constructors only assign; :meth:`Gateway.run` opens the
journal, claims the hardware, then runs the broker link, the inputs, health and housekeeping
until ``stop`` is set (SIGTERM, Ctrl-C), and stops cleanly: ``offline`` published, the
journal flushed and closed. If any long-lived task ends first (an exception, a return, a
cancellation by someone else), the gateway stops the same way, with a ``trouble`` event
naming the task and the reason, and :meth:`Gateway.run` raises :class:`TaskFailed` (exit 1),
so systemd starts a fresh process: it never runs on half its parts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.config.schema import SiteConfig
from gateway.core.clock import SystemClock
from gateway.core.events import EventDraft, EventType
from gateway.core.ports import Clock, InputSource
from gateway.core.supervisor import Supervisor, TaskFactory, TaskFailed, TaskFailure
from gateway.devices.state import DeviceStates
from gateway.features.builders import BUILDERS
from gateway.journal.guard import Prepared
from gateway.journal.guard import prepare as prepare_journal
from gateway.journal.lock import StorageLock
from gateway.journal.recorder import Recorder
from gateway.journal.store import Batch, Journal
from gateway.journal.watch import JournalWatch
from gateway.mqtt.link import CONSUMER as MQTT_CONSUMER
from gateway.mqtt.link import MqttLink, settings_from_config
from gateway.ops.control import ControlServer
from gateway.ops.health import HealthReporter
from gateway.paths import JOURNAL_FILE, control_path, storage_dir

log = logging.getLogger(__name__)

#: seconds the tasks get to end once cancelled; then they are abandoned (the command line
#: also has a hard deadline: the process ends within 5 s of SIGTERM whatever they do)
CANCEL_WITHIN_S = 1.5
#: seconds a failure's ``trouble`` event gets to be committed and published before ``offline``
TROUBLE_WITHIN_S = 1.0

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
        new_journal: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.simulate = simulate or config.simulation
        self.pin_factory = pin_factory
        self.journal = Journal(storage_dir(config) / JOURNAL_FILE)
        self.storage_lock = StorageLock(storage_dir(config))
        self.new_journal = new_journal
        self.journal_state: Prepared | None = None
        self.journal_watch = JournalWatch(self.journal)
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
        #: set as soon as the gateway begins to stop (``stop`` set, or a task failed)
        self.stopping = asyncio.Event()
        self.supervisor = Supervisor()
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
        self.journal_state = await asyncio.to_thread(
            prepare_journal, self.journal.path, new_journal=self.new_journal)
        self.journal.open()
        await self.journal.start()
        self.devices = DeviceStates(self.config, self.journal.kv_all("device:"))
        self.recorder.add_processor(self.devices)
        self._build_gpio()
        self._build_control()
        for build in BUILDERS:
            await build(self)
        self._build_health()
        self._restore_leds()

    def _restore_leds(self) -> None:
        """After a restart, every LED shows its device's open alarm again (a node asks with
        its next heartbeat, a GPIO LED is set now)."""
        engine = self.alarm_engine
        if engine is None:
            return
        for device, led in engine.led_states().items():
            for indicator in self.indicators:
                indicator.set_led(device, led)

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
        self.control.register("check_journal", self._cmd_check_journal)
        if self.simulate:
            from gateway.features.sim_control import register_fault_commands, register_sim_commands

            register_fault_commands(self)
            if self.gpio is not None:
                register_sim_commands(self)

    def _build_health(self) -> None:
        self.health.add("broker", self.mqtt.health)
        for consumer in self.consumers:
            self.health.watch_consumer(consumer)
        for source in self.inputs:
            self.health.add(source.name, source.health)

    def add_task(self, factory: TaskFactory, *, name: str, one_shot: bool = False) -> None:
        """Run ``factory()`` as long-lived task ``name``: if it ends (unless ``one_shot``)
        or fails, the whole gateway stops (see :mod:`gateway.core.supervisor`)."""
        self.supervisor.add(name, factory, one_shot=one_shot)

    def add_closer(self, closer: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._closers.append(closer)

    # -- running -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop cleanly. Raise :class:`TaskFailed` when a
        task ended first (after the same clean stop), :class:`StartRefused` when another
        gateway holds the storage folder (before anything in it is touched)."""
        self.storage_lock.acquire()
        try:
            failure: TaskFailure | None = None
            try:
                await self._build()
                await self._announce_start()
                await self.control.start()
                failure = await self._supervise(stop)
            finally:
                self.stopping.set()
                await self._shutdown()
        finally:
            self.storage_lock.release()
        if failure is not None:
            raise TaskFailed(failure)

    async def _supervise(self, stop: asyncio.Event) -> TaskFailure | None:
        sup = self.supervisor
        sup.add("mqtt", self.mqtt.run)
        for source in self.inputs:
            sup.add(source.name, functools.partial(source.run, self.recorder))
        sup.add("health", functools.partial(self.health.run, self._publish_health))
        sup.add("housekeeping", self._housekeeping)
        sup.add("journal-watch", self.journal_watch.run)
        self.ready.set()
        log.info("event=gateway_ready site=%s devices=%d simulate=%s tasks=%s",
                 self.config.site.id, len(self.config.devices), self.simulate,
                 ",".join(sup.names))
        failure = await sup.run_until(stop)
        self.stopping.set()
        if failure is None:
            log.info("event=gateway_stopping")
        else:
            log.error("event=task_failed task=%s reason=%s", failure.task, failure.reason)
            await self._journal_failure(failure)
        await self.mqtt.close()
        stuck = await sup.cancel_all(CANCEL_WITHIN_S)
        if stuck:
            log.error("event=tasks_did_not_stop tasks=%s", ",".join(stuck))
        return failure

    async def _journal_failure(self, failure: TaskFailure) -> None:
        """Journal why the gateway stops, and give MQTT a moment to publish it (it is
        published at the next start anyway). A broken journal is logged, never raised."""
        detail = {"source": "gateway", "task": failure.task, "reason": failure.line(),
                  "action": "gateway stopped; systemd restarts it"}
        try:
            async with asyncio.timeout(TROUBLE_WITHIN_S):
                event = await self.recorder.record(EventDraft(EventType.TROUBLE, detail=detail))
                await self.mqtt.wait_published(event.seq)
        except TimeoutError:
            log.warning("event=trouble_not_published task=%s", failure.task)
        except Exception as exc:
            log.error("event=trouble_not_journaled task=%s error=%r", failure.task, str(exc))

    async def _announce_start(self) -> None:
        assert self.devices is not None
        state = self.journal_state
        detail: dict[str, Any] = {"version": _version()}
        if state is not None:
            detail["journal"] = state.identity
        await self.recorder.record(EventDraft(EventType.GATEWAY_START, detail=detail))
        if state is not None and state.started_new not in ("", "first start"):
            await self.recorder.record(EventDraft(EventType.TROUBLE, detail={
                "source": "journal", "reason": f"new journal started: the old one was "
                f"{state.started_new}", "replaced": state.replaced, "moved_to": state.moved_to,
                "action": "open alarms and police timers from before are not known"}))
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

    async def _cmd_check_journal(self, request: dict[str, Any]) -> dict[str, Any]:
        """Check the journal now; a damaged one stops the gateway (exit 1)."""
        problems = await self.journal_watch.check_now()
        return {"whole": not problems, "problems": problems}


def _version() -> str:
    from gateway import __version__

    return __version__
