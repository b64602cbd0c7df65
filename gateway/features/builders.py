"""The feature builders the composition root runs, in this order, after the spine is built."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from gateway.features import homeassistant, operations, sdnotify
from gateway.features.alarms import build_alarms
from gateway.features.console import build_console
from gateway.features.serial import build_serial

if TYPE_CHECKING:
    from gateway.app import Gateway

Builder = Callable[["Gateway"], Coroutine[Any, Any, None]]

BUILDERS: tuple[Builder, ...] = (
    build_serial,
    build_alarms,
    build_console,
    operations.build,
    homeassistant.build,
    sdnotify.build,
)
