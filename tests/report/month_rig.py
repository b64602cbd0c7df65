"""A month of journal made by the gateway's own parts on a fake clock.

The rig assembles what ``gateway.app`` assembles for alarms (journal, recorder, device
state, alarm engine, commands, the escalation dispatcher with the real HTTP channel and the
real modem driver) around the simulated police hotline on 127.0.0.1 and the simulated LTE
modem on a pty. Time is a :class:`ManualClock` the script moves; the HTTP channel's and the
dispatcher's back-off sleeps move it too, as a real outage would take that long. Inputs
enter through the recorder as the drivers hand them over; acks and resolves go through the
command service (the path of MQTT and the console); police replies arrive as SMS on the
simulated modem; a restart builds everything again from the journal.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alarms.alarm_helpers import until

from drivers.modem import Modem, ModemSettings
from gateway.alarms.commands import CommandService
from gateway.alarms.drill import drill_command
from gateway.alarms.engine import AlarmEngine
from gateway.alarms.model import FINAL_STATUSES
from gateway.config.schema import SiteConfig
from gateway.core.clock import ManualClock
from gateway.core.events import EventDraft, EventType
from gateway.devices.state import DeviceStates
from gateway.escalation.dispatcher import Dispatcher, reply_sink
from gateway.escalation.http import HttpChannel
from gateway.escalation.wire import RetryPolicy
from gateway.features.operations import TroubleWatch
from gateway.journal.recorder import Recorder
from gateway.journal.store import Journal
from gateway.serialbus.logic import supervision_draft
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator

SECRET = b"report-hotline-secret"
POLICE = "+84901111111"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def at(day: int, hh: int, mm: int = 0, ss: int = 0, month: int = 11) -> float:
    """Unix seconds of a local (Asia/Ho_Chi_Minh) time in 2026."""
    return datetime(2026, month, day, hh, mm, ss, tzinfo=TZ).timestamp()


SITE_TOML = """
[site]
id = "bvdk-test"
name = "Bệnh viện Đa khoa Thử nghiệm"
address = "Số 8 Đường Lê Thánh Tông, Hòa Bình"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"

[[wards]]
id = "kham-benh"
name = "Khoa Khám bệnh"

[[wards]]
id = "noi"
name = "Khoa Nội"

[[devices]]
id = "cc-1"
ward = "cap-cuu"
room = "Giường 11"
pin = 17

[[devices]]
id = "cc-2"
ward = "cap-cuu"
room = "Quầy tiếp đón"
kind = "duress_button"
pin = 27

[[devices]]
id = "cc-3"
ward = "cap-cuu"
room = "Phòng 102"
input = "serial"
node = 3

[[devices]]
id = "kb-1"
ward = "kham-benh"
room = "Phòng khám 1"
pin = 22

[[devices]]
id = "kb-2"
ward = "kham-benh"
room = "Phòng khám 2"
input = "serial"
node = 7

[[devices]]
id = "kb-door"
ward = "kham-benh"
room = "Kho thuốc"
kind = "door_contact"
alarm_on_open = true
pin = 23

[[devices]]
id = "noi-1"
ward = "noi"
room = "Phòng 201"
pin = 24

[[devices]]
id = "noi-2"
ward = "noi"
room = "Phòng 202"
pin = 25

[serial]
port = "/dev/null"

[storage]
path = "var"
retention_days = 400

[health]
periodic_test_h = 24
backlog_max = 100

[policy]
default = "unacknowledged_after"
after_s = 120

[[policy.rules]]
ward = "cap-cuu"
mode = "immediate"

[policy.mass_alarm]
count = 3
window_s = 60

[escalation.http]
url = "{hotline_url}"
secret_file = "hotline.secret"
max_attempts = 2

[escalation.sms]
numbers = ["{police}", "0902222222"]
min_interval_s = 0

[modem]
port = "{modem_port}"
poll_s = 5

[drills]
per_ward_per_month = 1

[report]
sms_part_price = 350
"""


def site_config(tmp: Path, hotline_url: str, modem_port: str) -> Path:
    """Three wards: emergency (police at once), exam (desk first, 120 s), internal
    medicine (never pressed). Serial nodes for the battery and supervision faults.
    Returns the TOML file (the command line reads it)."""
    secret = tmp / "hotline.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, 0o600)
    path = tmp / "site.toml"
    path.write_text(SITE_TOML.format(hotline_url=hotline_url, police=POLICE,
                                     modem_port=modem_port), encoding="utf-8")
    return path


class MonthRig:
    """The gateway's alarm path on a fake clock; ``start``/``stop`` is one run of it."""

    def __init__(self, config: SiteConfig, hotline: HotlineServer, modem: ModemSimulator,
                 clock: ManualClock) -> None:
        self.config = config
        self.hotline = hotline
        self.modem_sim = modem
        self.clock = clock
        self.journal_path = config.resolve(config.storage.path) / "journal.sqlite3"
        self._tasks: list[asyncio.Task[Any]] = []

    async def advance(self, seconds: float) -> None:
        """A back-off sleep: the time passes on the fake clock at once."""
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    async def start(self) -> None:
        """Build everything from the journal, as a (re)started gateway does."""
        self.journal = Journal(self.journal_path)
        self.journal.open()
        await self.journal.start()
        self.recorder = Recorder(self.config, self.journal, self.clock)
        self.recorder.add_processor(DeviceStates(self.config, self.journal.kv_all("device:")))
        self.engine = AlarmEngine(self.config, self.clock, self.journal.kv_all("alarm:"),
                                  documents=self.journal.retained_all("alarm/"))
        self.recorder.add_processor(self.engine)
        self.commands = CommandService(self.engine, self.recorder)
        self.drill = drill_command(self.config, self.engine, self.recorder)
        cfg = self.config.escalation.http
        assert cfg is not None
        http = HttpChannel.from_config(
            cfg, SECRET.decode(), clock=self.clock, sleep=self.advance,
            policy=RetryPolicy(max_attempts=cfg.max_attempts, base_s=10, jitter=0))
        self.modem = Modem(ModemSettings(port=self.modem_sim.port, poll_s=5),
                           on_sms=reply_sink(self.config, self.recorder), clock=self.clock)
        dispatcher = Dispatcher(self.config, self.journal, self.recorder, self.engine,
                                self.clock, http, self.modem, sleep=self.advance,
                                retry_pause_s=30)
        self.troubles = TroubleWatch(_Parts(self.config, self.recorder))  # type: ignore[arg-type]
        self._tasks = [asyncio.create_task(self.modem.run()),
                       asyncio.create_task(dispatcher.run())]
        await self.recorder.record(EventDraft(EventType.GATEWAY_START,
                                              detail={"version": "test"}))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.journal.stop()
        self.journal.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    # -- the script's verbs -----------------------------------------------------------
    def to(self, when: float) -> None:
        """Move the fake clock forward to ``when`` (unix s)."""
        assert when >= self.clock.wall(), "the script went back in time"
        self.clock.advance(when - self.clock.wall())

    async def input(self, device: str, kind: EventType, *, value: int = 0,
                    detail: dict[str, Any] | None = None) -> str | None:
        """A device event as its driver hands it to the recorder; the alarm id it got."""
        event = await self.recorder.record(EventDraft(kind, device, value, detail=detail))
        return event.alarm_id

    async def press(self, device: str) -> str:
        alarm_id = await self.input(device, EventType.PRESS)
        assert alarm_id is not None
        await self.settled(alarm_id)
        return alarm_id

    async def settled(self, alarm_id: str) -> None:
        """Wait until every escalation decided for the alarm is final."""
        def done() -> bool:
            alarm = self.engine.get(alarm_id)
            return alarm is not None and all(
                e.status in FINAL_STATUSES for e in alarm.escalations)
        await until(done, 15, f"escalations of {alarm_id} final")

    async def command(self, alarm_id: str, action: str, by: str = "bv:Hùng",
                      note: str = "") -> dict[str, Any]:
        payload = f'{{"action": "{action}", "by": "{by}", "note": "{note}"}}'.encode()
        return await self.commands.handle(alarm_id, payload, "console:hung")

    async def police_ok(self, alarm_id: str, sender: str = POLICE) -> None:
        """The duty officer replies ``OK <code>`` by SMS; wait until it is applied."""
        alarm = self.engine.get(alarm_id)
        assert alarm is not None
        self.modem_sim.deliver_sms(sender, f"OK {alarm.code}")
        await until(lambda: self.engine.get(alarm_id).state == "police_acknowledged",  # type: ignore[union-attr]
                    15, f"police ack of {alarm_id}")

    async def drill_alarm(self, device: str) -> str:
        answer = await self.drill({"device": device})
        await self.settled(answer["alarm_id"])
        return str(answer["alarm_id"])

    async def offline(self, device: str, node: int, lost: bool) -> None:
        await self.recorder.record(supervision_draft(device, node, lost=lost,
                                                     now=self.clock.wall()))

    async def health(self, mqtt_backlog: int) -> None:
        """A health document as the gateway's reporter builds it, seen by the trouble
        watch (the MQTT consumer's backlog is what a broker outage looks like)."""
        await self.troubles.observe({"journal": {"mqtt": {"backlog": mqtt_backlog,
                                                          "oldest_undelivered_age_s": 0}}})

    async def periodic_test(self) -> None:
        """The periodic test report, as ``gateway.features.operations`` journals it."""
        await self.recorder.record(EventDraft(EventType.TEST_REPORT,
                                              detail={"periodic": True, "period_h": 24}))


class _Parts:
    """What :class:`TroubleWatch` reads of the gateway: its config and its recorder."""

    def __init__(self, config: SiteConfig, recorder: Recorder) -> None:
        self.config = config
        self.recorder = recorder


Script = Callable[[MonthRig], Awaitable[None]]
