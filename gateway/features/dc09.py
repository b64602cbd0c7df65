"""The DC-09 channel, wired beside HTTP and SMS (SPEC §7).

:func:`dc09_lane` is called by the alarm feature while it builds the dispatcher: it
constructs the channel from ``[escalation.dc09]``, registers each centre's link test and
event queue (with their journal cursors, so pruning waits for them) and the ``dc09``
part of ``gateway/health``, and returns the dispatcher's lane factory, or None without a
``[escalation.dc09]`` section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.escalation.dc09.service import Dc09Service

if TYPE_CHECKING:
    from gateway.app import Gateway


def dc09_lane(gw: Gateway) -> Dc09Service | None:
    cfg = gw.config.escalation.dc09
    if cfg is None:
        return None
    service = Dc09Service(gw.config, cfg, gw.journal, gw.clock)
    for task in service.tasks():
        gw.add_task(task)
    gw.consumers.extend(service.consumers())
    gw.health.add("dc09", service.health)
    return service
