"""Home Assistant MQTT discovery as a gateway feature, from ``[homeassistant]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.mqtt.homeassistant import Discovery

if TYPE_CHECKING:
    from gateway.app import Gateway


async def build(gw: Gateway) -> None:
    """Feature builder: active only with ``[homeassistant] enabled = true``."""
    if not gw.config.homeassistant.enabled:
        return
    discovery = Discovery(gw.config, gw.mqtt)
    gw.mqtt.subscribe_extra(f"{gw.config.homeassistant.discovery_prefix}/status",
                            discovery.on_ha_status)
    gw.add_task(discovery.run, name="homeassistant")
