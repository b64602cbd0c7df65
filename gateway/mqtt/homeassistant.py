"""Home Assistant MQTT discovery: every device appears in Home Assistant by itself.

For each device, retained configs under ``<discovery_prefix>/binary_sensor/<object_id>/config``:

* ``<site>_<device>``          ``safety``  on while the device is in alarm (SPEC §3's topic)
* ``<site>_<device>_trouble``  ``problem`` on while it is in trouble or offline
* ``<site>_<device>_tamper``   ``tamper``  serial nodes only (GPIO wiring reports no tamper)
* ``<site>_<device>_battery``  ``battery`` serial nodes only, on when the battery is low

all reading the device's retained ``device/<id>/state`` document through a
``value_template``, with the gateway's ``gateway/status`` as availability, plus one
``connectivity`` sensor for the gateway itself (the ``via_device`` of every device).
The configs are published on every broker connection and again whenever Home Assistant
announces ``online`` on ``<discovery_prefix>/status`` (it forgets entities it has not seen
since its own restart when the broker does not keep them).

Entity ids are suggested with ``default_entity_id``: Home Assistant 2025.10 deprecated the
``object_id`` option for this and 2026.4 stopped reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.config.schema import Device, SiteConfig

if TYPE_CHECKING:
    from gateway.mqtt.link import MqttLink

log = logging.getLogger(__name__)

MANUFACTURER = "Ward alarm gateway"

_NAMES = {
    "vi": {"alarm": "Báo động", "trouble": "Sự cố", "tamper": "Bị tháo/phá", "battery": "Pin yếu",
           "gateway": "Kết nối"},
    "en": {"alarm": "Alarm", "trouble": "Trouble", "tamper": "Tamper", "battery": "Battery low",
           "gateway": "Connectivity"},
}

# Templates read the device state document (SPEC §3). ``tamper`` and ``low_battery`` are
# used when the document carries them; until then the state and battery_mv decide.
_ALARM = "{{ 'ON' if value_json.state == 'alarm' else 'OFF' }}"
_TROUBLE = "{{ 'ON' if value_json.state in ['trouble', 'offline'] else 'OFF' }}"
_LOW = "(value_json.battery_mv is number and 0 < value_json.battery_mv <= %d)"
_TAMPER = (
    "{%% if value_json.tamper is defined %%}{{ 'ON' if value_json.tamper else 'OFF' }}"
    "{%% else %%}{{ 'ON' if value_json.state == 'trouble' and not %s else 'OFF' }}{%% endif %%}"
)
_BATTERY = (
    "{%% if value_json.low_battery is defined %%}{{ 'ON' if value_json.low_battery else 'OFF' }}"
    "{%% else %%}{{ 'ON' if %s else 'OFF' }}{%% endif %%}"
)


def gateway_identifier(config: SiteConfig) -> str:
    """The gateway's Home Assistant device identifier."""
    return f"{config.site.id}_gateway"


def discovery_configs(config: SiteConfig) -> dict[str, dict[str, Any]]:
    """Every discovery topic with its JSON config, gateway first (pure: config in, dicts out)."""
    prefix = config.homeassistant.discovery_prefix
    out: dict[str, dict[str, Any]] = {}
    gw_id = gateway_identifier(config)
    out[f"{prefix}/binary_sensor/{gw_id}_connectivity/config"] = _gateway_sensor(config)
    for dev in config.devices:
        for what, payload in _device_sensors(config, dev).items():
            object_id = f"{config.site.id}_{dev.id}" + ("" if what == "alarm" else f"_{what}")
            payload["unique_id"] = object_id
            payload["default_entity_id"] = f"binary_sensor.{object_id}"
            out[f"{prefix}/binary_sensor/{object_id}/config"] = payload
    return out


def _base(config: SiteConfig) -> str:
    return f"{config.mqtt.prefix}/{config.site.id}"


def _names(config: SiteConfig) -> dict[str, str]:
    return _NAMES.get(config.messages.language, _NAMES["en"])


def _gateway_sensor(config: SiteConfig) -> dict[str, Any]:
    gw_id = gateway_identifier(config)
    return {
        "name": _names(config)["gateway"],
        "unique_id": f"{gw_id}_connectivity",
        "default_entity_id": f"binary_sensor.{gw_id}_connectivity",
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "state_topic": f"{_base(config)}/gateway/status",
        "payload_on": "online",
        "payload_off": "offline",
        "qos": 1,
        "device": {
            "identifiers": [gw_id],
            "name": f"Alarm gateway {config.site.name}",
            "manufacturer": MANUFACTURER,
            "model": "alarm-gateway",
            "sw_version": __version__,
        },
    }


def _device_sensors(config: SiteConfig, dev: Device) -> dict[str, dict[str, Any]]:
    names = _names(config)
    common = _common(config, dev)
    sensors: dict[str, dict[str, Any]] = {
        "alarm": {**common, "name": names["alarm"], "device_class": "safety",
                  "value_template": _ALARM, "json_attributes_topic": common["state_topic"]},
        "trouble": {**common, "name": names["trouble"], "device_class": "problem",
                    "entity_category": "diagnostic", "value_template": _TROUBLE},
    }
    if dev.input == "serial":
        low = _LOW % (config.serial.low_battery_mv if config.serial else 0)
        sensors["tamper"] = {**common, "name": names["tamper"], "device_class": "tamper",
                             "value_template": _TAMPER % low}
        sensors["battery"] = {**common, "name": names["battery"], "device_class": "battery",
                              "entity_category": "diagnostic", "value_template": _BATTERY % low}
    return sensors


def _common(config: SiteConfig, dev: Device) -> dict[str, Any]:
    ward = config.ward(dev.ward)
    device: dict[str, Any] = {
        "identifiers": [f"{config.site.id}_{dev.id}"],
        "name": dev.name or f"{dev.room} ({dev.id})",
        "manufacturer": MANUFACTURER,
        "model": f"{dev.kind} ({dev.input})",
        "via_device": gateway_identifier(config),
    }
    if ward is not None:
        device["suggested_area"] = ward.name
    return {
        "state_topic": f"{_base(config)}/device/{dev.id}/state",
        "availability_topic": f"{_base(config)}/gateway/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "payload_on": "ON",
        "payload_off": "OFF",
        "qos": 1,
        "device": device,
    }


class Discovery:
    """Publishes the configs on each broker connection and on Home Assistant's ``online``."""

    def __init__(self, config: SiteConfig, mqtt: MqttLink) -> None:
        self._mqtt = mqtt
        self.configs = discovery_configs(config)
        self.wanted = asyncio.Event()
        self.published = 0

    async def on_ha_status(self, topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            log.info("event=homeassistant_online republish=%d", len(self.configs))
            self.wanted.set()

    async def run(self, poll_s: float = 1.0) -> None:
        """Until cancelled: publish when (re)connected or asked; retry until all went out."""
        done_for = -1
        mqtt = self._mqtt
        while True:
            await mqtt.connected.wait()
            if mqtt.connects != done_for or self.wanted.is_set():
                self.wanted.clear()
                if not await self._publish_all():
                    self.wanted.set()
                    await asyncio.sleep(poll_s)
                    continue
                done_for = mqtt.connects
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_s):  # not wait_for: see gateway.mqtt.link
                    await self.wanted.wait()

    async def _publish_all(self) -> bool:
        for topic, payload in self.configs.items():
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            if not await self._mqtt.publish_full(topic, body, retain=True):
                return False
        self.published += 1
        log.info("event=homeassistant_discovery_published configs=%d", len(self.configs))
        return True
