"""systemd notify as a gateway feature: READY once the gateway is ready, watchdog heartbeats
sent from the event loop, STOPPING on stop. Nothing without ``NOTIFY_SOCKET``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.ops.sdnotify import Notifier, heartbeat, watchdog_interval_s

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("gateway.ops.sdnotify")


def gateway_status(gw: Gateway) -> str:
    """One line for ``systemctl status``: broker link and the MQTT backlog."""
    broker = "broker connected" if gw.mqtt.connected.is_set() else "broker unreachable"
    part = gw.health.last.get("journal", {}).get("mqtt", {}) if gw.health.last else {}
    backlog = part.get("backlog") if isinstance(part, dict) else None
    tail = f", {backlog} events waiting" if backlog else ""
    return f"running, {broker}{tail}"


async def build(gw: Gateway) -> None:
    """Feature builder: READY once the gateway is ready, heartbeats, STOPPING on stop."""
    notifier = Notifier.from_env()
    if not notifier.enabled:
        return
    interval = watchdog_interval_s()
    notifier.notify("STATUS=starting")

    async def run() -> None:
        await gw.ready.wait()
        notifier.notify("READY=1", f"STATUS={gateway_status(gw)}")
        log.info("event=sd_notify_ready watchdog_interval_s=%s", interval)
        if interval is None:
            return
        await heartbeat(notifier, interval, lambda: gateway_status(gw))

    async def stopping() -> None:
        notifier.notify("STOPPING=1", "STATUS=stopping")
        notifier.close()

    gw.add_task(run, name="sdnotify", one_shot=interval is None)
    gw.add_closer(stopping)
