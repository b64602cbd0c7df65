"""A simulated site: every piece of hardware one config describes, and its gateway.

:class:`SimulatedSite` starts, for exactly the devices of the technician's config: one
:class:`~simulator.nodes.BusSimulator` with a firmware node per serial device (its node id,
key and hold time), the :class:`~simulator.modem.ModemSimulator` if there is a ``[modem]``,
the :class:`~simulator.hotline.HotlineServer` if there is an ``[escalation.http]`` (with the
secret of its ``secret_file``), the simulated ARC (:class:`~simulator.arc.ArcServer`, taking
every account of ``[escalation.dc09]`` with its key) if there is one, the derived config (:mod:`simulator.derive`), the gateway
as a child process (``python -m gateway.cli run -c <derived> --simulate``, log in
``<storage>/simulate/gateway.log``) and an MQTT observer. GPIO buttons are driven through
the gateway's control socket (its MockFactory pins). Every control is synchronous and
thread-safe, so the console and the scenario runner share it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.config.schema import Device, SiteConfig, read_key, read_secret
from gateway.core.errors import CommandError
from gateway.journal.reader import EventQuery, last_seq, read_after
from gateway.mqtt.link import settings_from_config
from gateway.ops.control import request_sync
from gateway.paths import control_path, journal_path
from receiver.dc09 import PanelAccount
from simulator.arc import ArcServer
from simulator.broker import EmbeddedBroker, free_port
from simulator.derive import ARC_HOST, Endpoints, SimulationError, sim_folder, write_derived
from simulator.faults import Faults
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator
from simulator.nodes import BusSimulator, NodeSpec
from simulator.observer import MqttObserver

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20.0
HEARTBEAT_MAX_S = 10.0
WATCH_INTERVAL_S = 0.5  # the watchdog notices a dead gateway well within 2 s
T = TypeVar("T")
LED_NAMES = {0: "off", 1: "received", 2: "security ack", 3: "police notified", 4: "police ack"}


@dataclass(frozen=True, slots=True)
class PoliceMessage:
    """What reached the (simulated) police: one HTTP request or one SMS as a phone shows it."""

    channel: str  # "http" | "sms"
    target: str  # URL path or phone number
    text: str
    drill: bool
    device: str | None
    answer: str  # HTTP status / "hang" / "garbage"; "sent" for SMS
    body: dict[str, Any] | None = None
    at: float = 0.0  # wall-clock unix seconds it arrived
    parts: int = 1  # SMS parts the phone joined


class SimulatedSite:
    """The simulated hardware and gateway for ``config`` (the technician's, unchanged).

    ``mqtt_url`` names the broker to use; without it the site brings its own
    (:class:`~simulator.broker.EmbeddedBroker`), so a simulation never needs, nor touches,
    the hospital's broker. ``start_gateway=False`` leaves starting the gateway to the
    technician (the command is in :attr:`gateway_command`)."""

    def __init__(self, config: SiteConfig, *, mqtt_url: str | None = None,
                 start_gateway: bool = True) -> None:
        self.config = config
        self.mqtt_url = mqtt_url
        self.start_gateway = start_gateway
        self.folder = sim_folder(config)
        self.bus: BusSimulator | None = None
        self.modem: ModemSimulator | None = None
        self.hotline: HotlineServer | None = None
        self.arc: ArcServer | None = None
        self.observer: MqttObserver | None = None
        self.derived: SiteConfig | None = None
        self.derived_path: Path | None = None
        self.faults: Faults | None = None
        self.broker: EmbeddedBroker | None = None
        #: why the gateway is gone (one line), once the watchdog noticed; None while it runs
        self.gateway_gone: str | None = None
        self._gone_listeners: list[Callable[[str], None]] = []
        self._watching = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Bring everything up; on any failure, tear down what started and raise."""
        try:
            self._fresh_folder()
            self._start_hardware()
            if self.mqtt_url is None:
                self.broker = EmbeddedBroker().start()
            ends = Endpoints(self.bus.port if self.bus else None,
                             self.modem.port if self.modem else None,
                             self.hotline.url if self.hotline else None,
                             self.mqtt_url or (self.broker.url if self.broker else None),
                             self.arc.port if self.arc else None,
                             embedded_broker=self.broker is not None,
                             console_listen=self._console_listen())
            self.derived_path, self.derived = write_derived(self.config, ends)
            self.faults = Faults(self.bus, self.modem, self.hotline, self.arc)
            self.observer = MqttObserver(settings_from_config(self.derived),
                                         f"alarm-simulate-observer-{os.getpid()}")
            self.observer.start()
            if self.start_gateway:
                self._start_gateway()
                self._watch_gateway()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the gateway (SIGTERM, then SIGKILL after 10 s), clear this run's retained
        alarm documents from the broker, and stop every simulator."""
        self._watching.clear()
        if self._watchdog is not None:
            self._watchdog.join(WATCH_INTERVAL_S * 4)
            self._watchdog = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.observer is not None and self.start_gateway:
            try:
                self.observer.clear_alarms()
            except (OSError, RuntimeError, ValueError):
                pass  # the broker went away: nothing to clear on it
        for part in (self.observer, self.bus, self.modem, self.hotline, self.arc, self.broker):
            if part is not None:
                part.stop()
        self.observer = self.bus = self.modem = self.hotline = self.arc = self.broker = None

    def __enter__(self) -> SimulatedSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def gateway_command(self) -> list[str]:
        assert self.derived_path is not None
        return [sys.executable, "-m", "gateway.cli", "run", "-c", str(self.derived_path),
                "--simulate"]

    @property
    def mqtt_shown(self) -> str:
        """The broker, as the banner shows it."""
        if self.derived is None:
            return "?"
        return self.derived.mqtt.url + (" (embedded, this run only)" if self.broker else "")

    @property
    def console_url(self) -> str | None:
        """The desk console of the simulated gateway, or None when the site has none."""
        console = self.derived.console if self.derived else None
        if console is None or not console.enabled:
            return None
        scheme = "https" if console.tls_cert and console.tls_key else "http"
        return f"{scheme}://{console.listen}/"

    def _console_listen(self) -> str | None:
        """Where the simulated console listens: the site's port on 127.0.0.1 (a simulation
        never serves the hospital LAN), or a free port when that one is taken."""
        console = self.config.console
        if console is None or not console.enabled:
            return None
        port = int(console.listen.rpartition(":")[2])
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()
        return f"127.0.0.1:{port}"

    @property
    def gateway_log(self) -> Path:
        return self.folder / "gateway.log"

    def _fresh_folder(self) -> None:
        """A new journal, registry and bus state for every run, so alarms left open by an
        earlier run cannot change what this one sees (the production journal is untouched:
        it lives one folder up)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, mode=0o700)

    def _start_hardware(self) -> None:
        serial = [d for d in self.config.devices if d.input == "serial" and d.node]
        if self.config.serial is not None:
            self.bus = BusSimulator([self._node_spec(d) for d in serial], self.folder / "bus")
            self.bus.start()
        if self.config.modem is not None:
            self.modem = ModemSimulator()
            self.modem.start()
        http = self.config.escalation.http
        if http is not None:
            secret = read_secret(self.config, http.secret_file).encode("utf-8")
            self.hotline = HotlineServer(secret, host="127.0.0.1").start()
        dc09 = self.config.escalation.dc09
        if dc09 is not None:
            accounts = {r.account.upper(): PanelAccount(
                account=r.account.upper(), site=self.config.site.id,
                key=read_key(self.config, r.key_file) if r.key_file else None)
                for r in dc09.receivers}
            self.arc = ArcServer(list(accounts.values()), host=ARC_HOST).start()

    def _node_spec(self, dev: Device) -> NodeSpec:
        """The node as the config describes it. It heartbeats every quarter of its
        supervision time, at most every 10 s (a technician waits for a drained battery
        to show), so a node only goes offline when it is silenced."""
        assert dev.node is not None and self.config.serial is not None
        key = None
        if dev.key_file:
            from gateway.serialbus.bus import load_key

            key = load_key(str(self.config.resolve(dev.key_file)))
        supervision_s = dev.supervision_s or self.config.serial.supervision_s
        return NodeSpec(dev.node, key=key, hold_ms=int(dev.hold_s * 1000),
                        hb_ms=int(min(HEARTBEAT_MAX_S, supervision_s / 4) * 1000))

    def _start_gateway(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        with open(self.gateway_log, "ab") as log:
            self._proc = subprocess.Popen(self.gateway_command, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.folder, env=env,
                                          stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._proc.poll() is not None:
                raise SimulationError(f"the gateway exited ({self._proc.returncode}): "
                                      f"{self.log_tail()}")
            try:
                self.control({"cmd": "ping"}, timeout=2.0)
                return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise SimulationError(f"the gateway did not answer in {START_TIMEOUT_S:.0f}"
                                          f" s: {self.log_tail()}") from None
                time.sleep(0.05)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.gateway_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    @property
    def gateway_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- noticing that the gateway died -------------------------------------------------
    def on_gateway_gone(self, listener: Callable[[str], None]) -> None:
        """``listener(reason)`` once, from the watchdog thread, when the gateway exits."""
        self._gone_listeners.append(listener)

    def _watch_gateway(self) -> None:
        """Poll the child every :data:`WATCH_INTERVAL_S`: a technician pressing buttons on a
        dead gateway must be told at once, not find out from stale states."""
        self._watching.set()

        def watch() -> None:
            while self._watching.is_set():
                proc = self._proc
                code = proc.poll() if proc is not None else None
                if code is not None and self._watching.is_set():
                    self._gone(code)
                    return
                time.sleep(WATCH_INTERVAL_S)

        self._watchdog = threading.Thread(target=watch, name="gateway-watchdog", daemon=True)
        self._watchdog.start()

    def _gone(self, code: int) -> None:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        self.gateway_gone = (f"the gateway stopped at {time.strftime('%H:%M:%S')} ({how}); "
                             f"last log lines: {self.log_tail(3)}")
        for listener in self._gone_listeners:
            try:
                listener(self.gateway_gone)
            except Exception:  # a listener must not stop the others
                pass

    def need_gateway(self) -> None:
        """Raise ``CommandError`` (one line) when the gateway this simulation started is gone."""
        if self.start_gateway and not self.gateway_running:
            raise CommandError(self.gateway_gone or "the gateway is not running; see "
                               f"{self.gateway_log}")

    # -- what the gateway journaled --------------------------------------------------------
    def journal_seq(self) -> int:
        """The simulated journal's last seq (0 before the gateway made one)."""
        assert self.derived is not None
        path = journal_path(self.derived)
        return last_seq(path) if path.exists() else 0

    def wait_journal(self, after: int, judge: Callable[[list[dict[str, Any]]], T | None],
                     timeout: float) -> T | None:
        """Poll the journal's events after seq ``after`` until ``judge(events)`` answers
        (or ``timeout`` s pass: None)."""
        assert self.derived is not None
        path = journal_path(self.derived)
        deadline = time.monotonic() + timeout
        while True:
            events = read_after(path, EventQuery(), after) if path.exists() else []
            verdict = judge(events)
            if verdict is not None or time.monotonic() > deadline:
                return verdict
            if self.start_gateway and not self.gateway_running:
                return None
            time.sleep(0.1)

    # -- the gateway's control socket --------------------------------------------------
    def control(self, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        assert self.derived is not None
        self.need_gateway()
        return request_sync(control_path(self.derived), payload, timeout=timeout)

    def _command(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.control(payload)
        if not answer.get("ok"):
            raise CommandError(str(answer.get("error", "the gateway refused")))
        return answer

    # -- devices ----------------------------------------------------------------------
    def device(self, device_id: str) -> Device:
        dev = self.config.device(device_id)
        if dev is None:
            known = ", ".join(d.id for d in self.config.devices) or "none"
            raise CommandError(f"unknown device {device_id!r}; known: {known}")
        return dev

    def _node(self, device_id: str, action: str) -> int:
        dev = self.device(device_id)
        if dev.input != "serial" or dev.node is None or self.bus is None:
            raise CommandError(f"{action}: {device_id} is a GPIO button, not a serial node")
        return dev.node

    def press(self, device_id: str) -> None:
        """A short press (about 0.15 s), as a finger does."""
        dev = self.device(device_id)
        self.need_gateway()
        if dev.input == "serial":
            assert self.bus is not None
            self.bus.press(self._node(device_id, "press"))
        else:
            self._command({"cmd": "click", "device": dev.id})

    def hold(self, device_id: str) -> None:
        """Press and keep it down (a duress HOLD after the device's hold time)."""
        dev = self.device(device_id)
        self.need_gateway()
        if dev.input == "serial":
            assert self.bus is not None
            self.bus.hold(self._node(device_id, "hold"))
        else:
            self._command({"cmd": "press", "device": dev.id})

    def release(self, device_id: str) -> None:
        dev = self.device(device_id)
        if dev.input == "serial":
            assert self.bus is not None
            self.bus.release(self._node(device_id, "release"))
        else:
            self._command({"cmd": "release", "device": dev.id})

    def silence(self, device_id: str, on: bool = True) -> None:
        """Mute (or unmute) the node's radio: after its supervision time it is offline."""
        self._faults().silence(self._node(device_id, "silence"), on)

    def reboot(self, device_id: str) -> None:
        self._faults().reboot(self._node(device_id, "reboot"))

    def drain(self, device_id: str, battery_mv: int) -> None:
        """Set the node's battery to ``battery_mv`` millivolts."""
        self._faults().drain(self._node(device_id, "drain"), battery_mv)

    def tamper(self, device_id: str, opened: bool = True) -> None:
        """Open (or close again) the node's enclosure."""
        self._faults().tamper(self._node(device_id, "tamper"), opened)

    def _faults(self) -> Faults:
        if self.faults is None:
            raise CommandError("the simulated site is not running")
        return self.faults

    def drill(self, device_id: str | None) -> dict[str, Any]:
        """A drill alarm, as ``alarm-gateway drill`` asks for it."""
        return self._command({"cmd": "drill", "device": device_id})

    def leds(self) -> dict[str, int | None]:
        """Each device's LED state (0 off .. 4 police acknowledged); None if unknown."""
        out: dict[str, int | None] = {}
        gpio: dict[str, Any] = {}
        if any(d.input == "gpio" for d in self.config.devices) and self.gateway_running:
            try:
                gpio = dict(self.control({"cmd": "leds"}, timeout=3.0).get("leds") or {})
            except (OSError, TimeoutError):
                gpio = {}
        for dev in self.config.devices:
            if dev.input == "serial" and self.bus is not None and dev.node in self.bus.nodes:
                out[dev.id] = self.bus.led(dev.node)
            else:
                led = gpio.get(dev.id)
                out[dev.id] = int(led) if isinstance(led, int | float | bool) else None
        return out

    def ack(self, device_id: str, by: str = "security-desk",
            note: str = "") -> tuple[str, str]:
        """Publish ``alarm/<id>/set`` ``ack`` for the device's open alarm, as the desk does;
        returns the alarm's code and id."""
        return self._alarm_command(device_id, "ack", by, note)

    def resolve(self, device_id: str, by: str = "security-desk",
                note: str = "") -> tuple[str, str]:
        return self._alarm_command(device_id, "resolve", by, note)

    def _alarm_command(self, device_id: str, action: str, by: str,
                       note: str) -> tuple[str, str]:
        assert self.observer is not None
        self.device(device_id)
        self.need_gateway()
        alarm = self.observer.alarm_for(device_id)
        if alarm is None or alarm.get("state") == "resolved":
            raise CommandError(f"no open alarm for {device_id}")
        self.observer.publish(f"alarm/{alarm['id']}/set",
                              {"action": action, "by": by, "note": note})
        return str(alarm.get("code")), str(alarm["id"])

    # -- what the police received ------------------------------------------------------
    def police(self) -> list[PoliceMessage]:
        """Every HTTP request the hotline saw and every SMS the modem sent, in the order
        they arrived."""
        out = []
        for r in self.hotline.requests() if self.hotline else []:
            body = r.body or {}
            out.append(PoliceMessage("http", r.path, str(body.get("message", "")),
                                     bool(body.get("drill")), body.get("device"),
                                     str(r.answer), r.body, r.at))
        for at, sms in self.modem.sent_log() if self.modem else []:
            out.append(PoliceMessage("sms", sms.number, sms.text,
                                     sms.text.startswith("[DIỄN TẬP]"), None, "sent",
                                     at=at, parts=sms.parts))
        return sorted(out, key=lambda m: m.at)

    def deliveries(self) -> list[dict[str, Any]]:
        """HTTP bodies the hotline accepted, each ``Idempotency-Key`` once."""
        return [r.body for r in (self.hotline.deliveries() if self.hotline else []) if r.body]
