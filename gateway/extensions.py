"""The feature builders the composition root runs, in order, after the spine is built.

Each entry is ``"module:function"``; the function takes the :class:`~gateway.app.Gateway`
and adds its inputs, processors, control commands and tasks. A feature is one line here.
"""

from __future__ import annotations

BUILDERS: list[str] = [
    "gateway.serial_feature:build_serial",
    "gateway.alarm_feature:build_alarms",
    "gateway.console:build_console",
    "gateway.operations:build",
    "gateway.homeassistant:build",
    "gateway.sdnotify:build",
]
