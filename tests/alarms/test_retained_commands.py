"""A retained ``alarm/<id>/set`` is never applied (SPEC §3): a broker replays retained
messages on every reconnect, and an applied replay re-escalated the alarm each time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alarms.alarm_helpers import alarm_site, in_thread, journal_events, run_gateway, until
from simulator.hotline import HotlineServer

BASE = "alarmgw/bv-test"


def plans(tmp_path: Path) -> list[dict[str, Any]]:
    return [e["detail"]["escalation"] for e in journal_events(tmp_path, "alarm_state")
            if "escalation" in e["detail"]]


def test_a_retained_escalate_is_applied_live_once_and_never_on_reconnect(
        tmp_path: Path, broker, collector, hotline: HotlineServer) -> None:  # type: ignore[no-untyped-def]
    config = alarm_site(tmp_path, broker.port, hotline_url=hotline.url,
                        policy='default = "never"')
    command = json.dumps({"action": "escalate", "by": "Trưởng ca"})

    async def first(gw: Any, factory: Any) -> None:
        mock = factory.pin(17)
        await in_thread(lambda: (mock.drive_low(), mock.drive_high()))
        [alarm] = await until(lambda: gw.alarm_engine.open_alarms(), what="an alarm")
        # a desk client that (wrongly) publishes its command retained
        info = collector.client.publish(f"{BASE}/alarm/{alarm.id}/set", command, qos=1,
                                        retain=True)
        await in_thread(info.wait_for_publish, 5)
        assert await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)

    async def second(gw: Any, factory: Any) -> None:
        # on connecting, the broker hands the gateway the retained command again
        await until(lambda: journal_events(tmp_path, "rejected_command"), 10,
                    "the retained command rejected")
        await in_thread(collector.wait_for, lambda ms: collector.events("rejected_command"), 10)

    run_gateway(config, first)
    assert len(plans(tmp_path)) == 1  # applied once: it arrived live (retain flag 0)
    run_gateway(config, second)
    [rejected] = journal_events(tmp_path, "rejected_command")
    assert rejected["detail"]["reason"] == "retained"
    assert rejected["detail"]["origin"] == "mqtt" and rejected["alarm_id"] is not None
    assert len(plans(tmp_path)) == 1 and len(hotline.deliveries()) == 1  # nothing re-escalated
    assert [e["detail"]["reason"] for e in collector.events("rejected_command")] == ["retained"]
