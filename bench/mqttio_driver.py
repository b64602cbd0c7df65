"""Runs mqtt-io inside its own virtualenv and drives its inputs from inside its process.

    <mqtt-io venv>/bin/python bench/mqttio_driver.py CONFIG.json

CONFIG.json: ``{"host", "port", "prefix", "pins": [..], "serial": "/dev/pts/N",
"read_interval": 0.01, "gpio": "interrupt" | "poll", "poll_interval": 0.1}``. mqtt-io runs on
gpiozero's MockFactory (``GPIOZERO_PIN_FACTORY=mock``) through its ``gpiozero`` GPIO module,
one digital input per pin (``interrupt: both``, or polled), and its ``serial`` stream module
on the pty the bench writes to.

The command loop (:func:`serve`) is shared with the gateway's driver in
:mod:`bench.side_by_side`, so both tools' mock pins are driven by the same code: commands are
JSON lines on stdin, answers JSON lines on the original stdout (anything the tool prints goes
to stderr). Times are ``time.perf_counter()`` (CLOCK_MONOTONIC, one clock for every process
on the machine), so the bench's subscriber can subtract them from its own arrival times.

This file uses only the standard library at import time: it runs under a Python that has
mqtt-io and not this project, and under the project's Python (imported for :func:`serve`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

PinFor = Callable[[int], Any]


def protocol_stream() -> IO[str]:
    """The real stdout for answers; fd 1 is pointed at stderr so stray prints cannot
    corrupt the protocol."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return out


def send(out: IO[str], doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc) + "\n")
    out.flush()


def burst(pin_for: PinFor, pins: list[int], rate: float, seconds: float) -> dict[str, Any]:
    """``rate`` presses/s (each press = drive low + drive high) round-robin over ``pins``."""
    mocks = [pin_for(p) for p in pins]
    total = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(total):
        pin = mocks[i % len(mocks)]
        pin.drive_low()
        pin.drive_high()
        ahead = t0 + (i + 1) / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    return {"presses": total, "t0": t0, "t1": time.perf_counter()}


def serve(pin_for: PinFor, on_quit: Callable[[], None], out: IO[str],
          commands: IO[str] | None = None) -> None:
    """Answer commands until ``quit`` or end of input, then call ``on_quit``.

    ``{"op": "drive", "pin": 2, "low": true}`` → ``{"t0": perf_counter before the edge}``
    ``{"op": "burst", "pins": [...], "rate": 500, "seconds": 2}`` → ``{"presses", "t0", "t1"}``
    ``{"op": "quit"}`` → ``{"bye": true}``
    """
    source = commands if commands is not None else sys.stdin
    try:
        for line in source:
            if not line.strip():
                continue
            cmd = json.loads(line)
            op = cmd.get("op")
            try:
                if op == "drive":
                    pin = pin_for(int(cmd["pin"]))
                    t0 = time.perf_counter()
                    (pin.drive_low if cmd["low"] else pin.drive_high)()
                    send(out, {"t0": t0})
                elif op == "burst":
                    send(out, burst(pin_for, list(cmd["pins"]), float(cmd["rate"]),
                                    float(cmd["seconds"])))
                elif op == "quit":
                    send(out, {"bye": True})
                    break
                else:
                    send(out, {"error": f"unknown op {op!r}"})
            except Exception as exc:  # answer, never hang the bench
                send(out, {"error": repr(exc)})
    finally:
        on_quit()


def _digital_input(spec: dict[str, Any], pin: int) -> dict[str, Any]:
    """``gpio: "interrupt"`` (default): gpiozero's callbacks, no polling; ``"poll"``: read
    every ``poll_interval`` s."""
    conf: dict[str, Any] = {"name": f"in{pin}", "module": "mock", "pin": pin, "pullup": True}
    if spec.get("gpio", "interrupt") == "interrupt":
        conf["interrupt"] = "both"
    else:
        conf["poll_interval"] = spec.get("poll_interval", 0.1)
    return conf


def mqttio_config(spec: dict[str, Any]) -> dict[str, Any]:
    """mqtt-io's config for the bench: defaults everywhere except the ones stated here."""
    return {
        "mqtt": {
            "host": spec["host"],
            "port": spec["port"],
            "topic_prefix": spec["prefix"],
            "client_id": spec["prefix"],
        },
        "options": {"install_requirements": False},
        "gpio_modules": [{"name": "mock", "module": "gpiozero"}],
        "digital_inputs": [_digital_input(spec, p) for p in spec["pins"]],
        "stream_modules": [
            {"name": "bus", "module": "serial", "device": spec["serial"], "baud": 115200,
             "read_interval": spec.get("read_interval", 0.01)}
        ],
        "logging": {
            "version": 1,
            "handlers": {"console": {"class": "logging.StreamHandler", "level": "WARNING"}},
            "loggers": {"mqtt_io": {"level": "WARNING", "handlers": ["console"]}},
        },
    }


def main() -> None:
    os.environ["GPIOZERO_PIN_FACTORY"] = "mock"
    out = protocol_stream()
    spec = json.loads(open(sys.argv[1], encoding="utf8").read())

    import logging.config
    from importlib.metadata import version

    from gpiozero import Device  # type: ignore[import-not-found]
    from mqtt_io.config import validate_and_normalise_main_config  # type: ignore[import-not-found]
    from mqtt_io.server import MqttIo  # type: ignore[import-not-found]

    config = validate_and_normalise_main_config(mqttio_config(spec))
    logging.config.dictConfig(config["logging"])
    server = MqttIo(config)

    def quit_server() -> None:
        task = server._main_task  # what mqtt-io's own SIGTERM handler cancels
        if task is not None:
            server.loop.call_soon_threadsafe(task.cancel)

    def pin_for(pin: int) -> Any:
        return Device.pin_factory.pin(pin)

    def commands() -> None:
        if not server.running.wait(30):
            send(out, {"ready": False, "error": "mqtt-io did not report running within 30 s"})
            quit_server()
            return
        send(out, {"ready": True, "pid": os.getpid(), "tool": "mqtt-io",
                   "version": version("mqtt-io"), "gpiozero": version("gpiozero"),
                   "python": sys.version.split()[0]})
        serve(pin_for, quit_server, out)

    threading.Thread(target=commands, name="bench-driver", daemon=True).start()
    server.run()  # the main thread, as mqtt-io runs it (it installs signal handlers)


if __name__ == "__main__":
    main()
