"""The feature builders the composition root runs, in order, after the spine is built.

Each entry is ``"module:function"``; the function takes the :class:`~gateway.app.Gateway`
and adds its inputs, processors, control commands and tasks. A feature is one line here.
"""

from __future__ import annotations

BUILDERS: list[str] = [
    "gateway.features.serial:build_serial",
    "gateway.features.alarms:build_alarms",
    "gateway.features.console:build_console",
    "gateway.ops.operations:build",
    "gateway.mqtt.homeassistant:build",
    "gateway.ops.sdnotify:build",
]
