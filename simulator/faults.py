"""Faults a technician injects into a simulated site, by name, as the console types them.

One vocabulary for the console and the scenario files: ``hotline ok|500|429|400|hang|
garbage|down``, ``arc ack|nak|duh|silence|down``, ``modem online|offline|noreg|error CODE``, ``noisy on|off``, and the node
faults (silence, reboot, drain, tamper). Each maps onto the simulators' own controls; a
fault on a part the site does not have is a :class:`~gateway.core.errors.CommandError` naming it.
"""

from __future__ import annotations

from typing import TypeVar

from gateway.core.errors import CommandError
from simulator.arc import ArcServer
from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator
from simulator.nodes import BusSimulator

HOTLINE_MODES = ("ok", "500", "429", "400", "hang", "garbage", "down")
ARC_MODES = ("ack", "nak", "duh", "silence", "down")
MODEM_MODES = ("online", "offline", "noreg", "error")
#: per-byte probabilities of ``noisy on``: a bad line that still gets most frames through
NOISE = {"corrupt": 0.002, "drop": 0.001, "duplicate": 0.001}
P = TypeVar("P")


class Faults:
    """Fault controls over whichever simulators the site has (None where it has none)."""

    def __init__(self, bus: BusSimulator | None, modem: ModemSimulator | None,
                 hotline: HotlineServer | None, arc: ArcServer | None = None) -> None:
        self.bus = bus
        self.modem = modem
        self.hotline = hotline
        self.arc = arc

    def arc_mode(self, mode: str, times: int | None = None) -> str:
        """``ack`` clears every fault (and restarts a ``down`` ARC); ``nak`` / ``duh`` /
        ``silence`` answer the next ``times`` messages so, or all until ``ack``."""
        arc = self._need(self.arc, "a receiving centre ([escalation.dc09])")
        if mode not in ARC_MODES:
            raise CommandError(f"arc: one of {', '.join(ARC_MODES)}, not {mode!r}")
        if mode == "ack":
            arc.answer("ack")
            arc.start()
            return "the ARC answers ACK again"
        if mode == "down":
            arc.stop()
            return "ARC down: connections refused until `arc ack`"
        arc.answer("ack")
        arc.answer(mode, times)
        return f"the ARC answers {mode.upper()} to " + (
            f"the next {times} message(s)" if times else "every message until `arc ack`")

    def hotline_mode(self, mode: str, times: int | None = None) -> str:
        """``ok`` clears every fault (and restarts a ``down`` hotline); the others apply to
        the next ``times`` requests, or all of them until ``ok`` when ``times`` is None."""
        hotline = self._need(self.hotline, "an HTTP hotline ([escalation.http])")
        if mode not in HOTLINE_MODES:
            raise CommandError(f"hotline: one of {', '.join(HOTLINE_MODES)}, not {mode!r}")
        if mode == "ok":
            hotline.clear_faults()
            hotline.release()
            hotline.start()
            return "hotline answers 200 again"
        if mode == "down":
            hotline.stop()
            return "hotline down: connections refused until `hotline ok`"
        hotline.clear_faults()
        if mode == "hang":
            hotline.hang(times)
        elif mode == "garbage":
            hotline.garbage(times)
        elif mode == "429":
            hotline.rate_limit("2", times)
        else:
            hotline.fail(int(mode), times)
        return f"hotline answers {mode} to {'every request' if times is None else times}"

    def modem_mode(self, mode: str, code: int | None = None, times: int = 1) -> str:
        modem = self._need(self.modem, "a modem ([modem])")
        if mode == "online":
            modem.set_silent(False)
            modem.set_registration(1)
            return "modem online and registered"
        if mode == "offline":
            modem.set_silent(True)
            return "modem silent: answers nothing, as one that hung or lost power"
        if mode == "noreg":
            modem.set_registration(2, 2)
            return "modem lost its registration (searching)"
        if mode == "error":
            if code is None:
                raise CommandError("modem error needs a +CMS ERROR code, e.g. `modem error 500`")
            modem.fail_sends(times, code)
            return f"the next {times} send(s) answer +CMS ERROR: {code}"
        raise CommandError(f"modem: one of {', '.join(MODEM_MODES)}, not {mode!r}")

    def sms_from(self, sender: str, text: str) -> str:
        modem = self._need(self.modem, "a modem ([modem])")
        modem.deliver_sms(sender, text)
        return f"SMS from {sender} delivered to the modem: {text!r}"

    def noisy(self, on: bool) -> str:
        bus = self._need(self.bus, "serial nodes ([serial])")
        if on:
            bus.noisy(**NOISE)
        else:
            bus.noisy()
        return "serial line noisy" if on else "serial line clean"

    def silence(self, node: int, on: bool = True) -> None:
        self._need(self.bus, "serial nodes").silence(node, on)

    def reboot(self, node: int) -> None:
        self._need(self.bus, "serial nodes").reboot(node)

    def drain(self, node: int, battery_mv: int) -> None:
        self._need(self.bus, "serial nodes").drain_battery(node, battery_mv)

    def tamper(self, node: int, opened: bool = True) -> None:
        self._need(self.bus, "serial nodes").tamper(node, opened)

    @staticmethod
    def _need(part: P | None, what: str) -> P:
        if part is None:
            raise CommandError(f"this site has no {what}")
        return part
