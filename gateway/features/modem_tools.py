"""The technician's modem tools: ``identify``, ``signal``, ``send NUMBER TEXT``, ``inbox``.

One serial port has one owner. While the gateway runs, it owns the modem, so the tools go
through its control socket (command ``modem``) and the gateway does the AT work between its
own polls and sends. With no gateway running, :func:`run_direct` opens the modem itself for
the one operation, with ``take_sms=False`` so a message waiting on the SIM (a police
reply!) is listed, never consumed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from gateway.core.errors import CommandError

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.config.schema import SiteConfig

log = logging.getLogger(__name__)

OPS = ("identify", "signal", "send", "inbox")
TEXT_MAX = 640  # characters of a test message (a few SMS parts)
DIRECT_START_S = 15.0


async def modem_op(modem: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Run one tool operation on a started :class:`drivers.modem.Modem`."""
    from drivers.modem import ModemError

    op = request.get("op")
    try:
        if op == "identify":
            return {"modem": await modem.identify()}
        if op == "signal":
            return {"modem": await modem.refresh()}
        if op == "inbox":
            return {"inbox": await modem.inbox()}
        if op == "send":
            number, text = request.get("number"), request.get("text")
            if not isinstance(number, str) or not number.strip():
                raise CommandError("modem send: a NUMBER is required")
            if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX:
                raise CommandError(f"modem send: TEXT of 1 to {TEXT_MAX} characters")
            refs = await modem.send_sms(number, text)
            log.info("event=modem_test_sms number=%s parts=%d", number, len(refs))
            return {"sent": {"number": number, "parts": len(refs), "refs": refs}}
    except ModemError as exc:
        raise CommandError(f"modem {op}: {exc}") from exc
    raise CommandError(f"modem: op is one of {', '.join(OPS)}, not {op!r}")


def register_modem_tools(gw: Gateway, modem: Any) -> None:
    """The control socket's ``modem`` command, when the gateway owns a modem."""

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        return await modem_op(modem, request)

    gw.control.register("modem", handle)


def run_direct(config: SiteConfig, request: dict[str, Any]) -> dict[str, Any]:
    """Open the modem of ``config`` (no gateway runs), do one operation, close it."""
    from drivers.modem import Modem, ModemSettings

    cfg = config.modem
    if cfg is None:
        raise CommandError("the config has no [modem] section")
    port = str(config.resolve(cfg.port)) if "://" not in cfg.port else cfg.port
    settings = ModemSettings(port=port, baudrate=cfg.baud, poll_s=max(cfg.poll_s, 5.0),
                             send_timeout_s=60.0, take_sms=False)

    async def go() -> dict[str, Any]:
        modem = Modem(settings)
        task = asyncio.create_task(modem.run())
        try:
            async with asyncio.timeout(DIRECT_START_S):
                while not modem.status()["present"]:
                    if task.done():
                        break
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pass
        try:
            if not modem.status()["present"]:
                raise CommandError(f"the modem on {port} does not answer: "
                                   f"{modem.status().get('last_error') or 'no reply'}")
            return await modem_op(modem, request)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return asyncio.run(go())
