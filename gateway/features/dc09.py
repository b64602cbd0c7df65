"""The DC-09 channel, wired beside HTTP and SMS (SPEC §7).

:func:`dc09_lane` is called by the alarm feature while it builds the dispatcher: it
constructs the channel from ``[escalation.dc09]``, registers each centre's link test and
event queue (with their journal cursors, so pruning waits for them) and the ``dc09``
part of ``gateway/health``, and returns the dispatcher's lane factory, or None without a
``[escalation.dc09]`` section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.escalation.dc09.service import Dc09Service


def dc09_lane(gw: Gateway) -> Dc09Service | None:
    """The DC-09 service of ``[escalation.dc09]`` (its tasks and health added), or None."""
    cfg = gw.config.escalation.dc09
    if cfg is None:
        return None
    # imported here: its AES (cryptography) costs memory only on sites that use DC-09
    from gateway.escalation.dc09.service import Dc09Service

    service = Dc09Service(gw.config, cfg, gw.journal, gw.clock)
    for number, task in enumerate(service.tasks(), 1):
        gw.add_task(task, name=f"dc09-{number}")  # each centre's queue and link test
    gw.consumers.extend(service.consumers())
    gw.health.add("dc09", service.health)
    return service
