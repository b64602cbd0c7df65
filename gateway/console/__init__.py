"""The security desk console: a small web page served by the gateway process itself.

Open alarms in big type with a sound and a flash on each new one, the actions a guard takes
(acknowledge, call the police now, resolve), device troubles, the gateway's health and
today's history, updated live over server-sent events. See ``docs/console.md``.

``feature`` wires it into the gateway; ``server`` is the HTTP surface; ``feed`` turns journal
commits into page updates; ``auth`` holds accounts, sessions and login throttling; the page
itself is plain HTML, CSS and JavaScript in ``static/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.app import Gateway


async def build_console(gw: Gateway) -> None:
    """The feature builder; imports the web stack (aiohttp, ~9 MiB) only when enabled."""
    settings = gw.config.console
    if settings is None or not settings.enabled:
        return
    from gateway.console.feature import build_console as build

    await build(gw)
