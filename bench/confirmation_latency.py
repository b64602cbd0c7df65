"""Police ``OK <code>`` → the confirmation SMS at the modem, in process (target: p99 ≤ 1 s).

The officer who answers an alarm must learn at once that the answer was understood
(``docs/police-phone.md``). Measured: from the police number's ``OK <code>`` injected into
the simulated modem on its pty (stored on the SIM, announced by ``+CMTI``) to the
``AT+CMGS`` of the confirmation as the modem reads it. Its share up to the ``AT+CMGR``
that reads the reply is printed too; the rest is the reply judged and journaled, the
answer built and the modem's lock taken.

The set-up of :mod:`bench.escalation_latency` (in-process gateway, loopback mosquitto,
MockFactory pins driven from a thread, policy ``immediate``), with SMS the only channel.
Rounds are sequential: press, wait until the alarm SMS is journaled as delivered, send
``OK <code>`` from the police number, wait for the confirmation, resolve the alarm and wait
for the resolve to commit. ``[escalation.sms] min_interval_s = 0``: the per-number alarm
SMS interval would otherwise hold the next round's alarm SMS back for a minute (answers
never wait behind it: the confirmation follows the alarm SMS to the same number at once
whatever the interval). The first few rounds warm up and are not counted; an alarm whose
confirmation the gateway would withhold as a repeat is resolved unanswered and counted
apart (see :func:`_run`).

Every wait is bounded: what never arrives ends the bench with an error line and exit
status 1, and a watchdog ends the process if even that does not happen in time.

    python -m bench.confirmation_latency [--rounds 50]
"""

from __future__ import annotations

import _thread
import argparse
import asyncio
import functools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.common import figures, machine, mosquitto
from bench.escalation_latency import DEVICES, POLICE, WARM_UP, Commits, click, delivered, site
from simulator.modem import ModemSimulator

WAIT_S = 15.0
"""At most this long for any one thing a round waits for."""
ROUND_S, SPARE_S = 3.0, 120.0
"""The watchdog's allowance: ``ROUND_S`` a round (one takes well under a second) and
``SPARE_S`` for start and stop."""
GRACE_S = 30.0
"""After the watchdog's interrupt, this long to stop before the process is ended."""

T = TypeVar("T")


class Stalled(Exception):
    """Something a round waited for never came."""


async def within(what: str, wait: Awaitable[T], seconds: float = WAIT_S) -> T:
    try:
        async with asyncio.timeout(seconds):
            return await wait
    except TimeoutError:
        raise Stalled(f"{what}: nothing within {seconds:.0f} s") from None


def confirmation(sim: ModemSimulator, before: int, code: str, where: str) -> bool:
    """The confirmation of ``OK <code>`` is among the messages the modem sent after the
    first ``before``; any other message there (an explanation) is an error."""
    for sms in sim.sent_messages()[before:]:
        if sms.number == POLICE and sms.text.startswith(f"Đã nhận OK {code}:"):
            return True
        raise Stalled(f"{where}: the police phone got {sms.text!r}, not the confirmation")
    return False


def read_after(sim: ModemSimulator, t0: float, prefix: str) -> float | None:
    """When the modem read the first command line starting with ``prefix`` at/after ``t0``."""
    return next((t for t, line in sim.command_log() if t >= t0 and line.startswith(prefix)),
                None)


@dataclass
class Result:
    """Seconds from the OK injected to the confirmation's ``AT+CMGS`` and to the
    ``AT+CMGR`` that read the OK, per counted round; alarms re-drawn (see :func:`_run`)."""

    cmgs: list[float] = field(default_factory=list)
    cmgr: list[float] = field(default_factory=list)
    redrawn: int = 0


async def _run(config: Path, rounds: int, sim: ModemSimulator) -> Result:
    """The rounds. An alarm whose confirmation would read exactly as one sent less than
    ``CONFIRM_EVERY_S`` ago (same room, and its random code the same: about once in a
    300-round run) is resolved unanswered and counted in ``redrawn``: the gateway confirms
    one text to one number once in that time, so no confirmation would come."""
    from gpiozero.pins.mock import MockFactory

    from gateway.app import Gateway
    from gateway.config.schema import load_config
    from gateway.escalation.answers import CONFIRM_EVERY_S

    factory = MockFactory()
    gw = Gateway(load_config(config), simulate=True, pin_factory=factory)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    out = Result()
    confirmed: dict[tuple[str, str], float] = {}  # (room, code) -> when confirmed (monotonic)
    try:
        await within("gateway ready", gw.ready.wait())
        await within("MQTT connected", gw.mqtt.connected.wait())
        commits = Commits(gw.journal)
        modem = gw.escalation.sms.sender

        async def modem_ok() -> None:
            while modem.status()["state"] != "ok":  # noqa: ASYNC110 - status has no event
                await asyncio.sleep(0.05)

        await within("modem ready", modem_ok())
        pins = [factory.pin(i + 2) for i in range(DEVICES)]

        def until(what: str, predicate: Callable[[], Any]) -> Awaitable[Any]:
            return within(what, commits.until(predicate, timeout=WAIT_S + 1))

        n = done = 0
        while done < rounds + WARM_UP:
            n += 1
            where = f"alarm {n}"
            await within(f"{where}: press", asyncio.to_thread(click, pins[n % DEVICES]))
            [alarm] = await until(f"{where}: alarm open", gw.alarm_engine.open_alarms)
            await until(f"{where}: alarm SMS delivered", functools.partial(delivered, alarm))
            text = (alarm.room, alarm.code)  # what the confirmation's text depends on
            if time.monotonic() - confirmed.get(text, -CONFIRM_EVERY_S) < CONFIRM_EVERY_S:
                out.redrawn += 1
            else:
                before = len(sim.sent_messages())
                t0 = time.perf_counter()
                sim.deliver_sms(POLICE, f"OK {alarm.code}")
                await until(f"{where}: confirmation of OK {alarm.code}",
                            functools.partial(confirmation, sim, before, alarm.code, where))
                confirmed[text] = time.monotonic()
                sent, read = read_after(sim, t0, "AT+CMGS="), read_after(sim, t0, "AT+CMGR=")
                if sent is None or read is None:
                    raise Stalled(f"{where}: confirmed, but no AT+CMGR / AT+CMGS after the OK")
                if done >= WARM_UP:
                    out.cmgs.append(sent - t0)
                    out.cmgr.append(read - t0)
                done += 1
            assert gw.command_handler is not None
            await within(f"{where}: resolve", gw.command_handler(
                alarm.id, b'{"action":"resolve","by":"bench"}', "bench"))
            await until(f"{where}: resolve committed", lambda: not gw.alarm_engine.open_alarms())
    finally:
        stop.set()
        try:
            await within("gateway stop", task, 20)
        finally:
            factory.reset()
    return out


def run(rounds: int) -> Result:
    with ExitStack() as stack:
        port = stack.enter_context(mosquitto())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sim = ModemSimulator()
        sim.start()
        stack.callback(sim.stop)
        return asyncio.run(_run(site(folder, port, None, sim.port), rounds, sim))


def watchdog(seconds: float) -> threading.Timer:
    """Interrupts the bench if it is still running after ``seconds`` (as Ctrl-C would: the
    gateway, the modem and mosquitto are stopped on the way out), and ends the process
    (exit status 2) if even that has not finished ``GRACE_S`` later: a hang outside the
    bounded waits must not hang the run."""
    def interrupt() -> None:
        print(f"confirmation_latency: still running after {seconds:.0f} s, interrupting",
              file=sys.stderr, flush=True)
        hard = threading.Timer(GRACE_S, os._exit, (2,))
        hard.daemon = True
        hard.start()
        _thread.interrupt_main()

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="alarms answered, counted")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("policy immediate, SMS only, min_interval_s 0; one alarm at a time: press, alarm "
          "SMS delivered, OK <code> from the police number, confirmation, resolve; "
          f"{WARM_UP} warm-up rounds not counted", flush=True)
    timer = watchdog(SPARE_S + ROUND_S * (args.rounds + WARM_UP))
    try:
        result = run(args.rounds)
    except Stalled as exc:
        print(f"confirmation_latency: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("confirmation_latency: interrupted, no figures", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        timer.cancel()
    print(figures("OK <code> → confirmation AT+CMGS at the modem", result.cmgs,
                  points=(50, 90, 99)))
    print(figures("  of which OK <code> → AT+CMGR (the reply read)", result.cmgr,
                  points=(50, 90, 99)))
    print(f"alarms resolved unanswered: {result.redrawn} (room and code as a confirmation "
          "< 60 s before: the gateway would not confirm the same text again)", flush=True)


if __name__ == "__main__":
    main()
