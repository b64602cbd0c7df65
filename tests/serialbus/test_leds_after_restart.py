"""After a restart every LED shows its device's open alarm again, on nodes and on GPIO.

Two alarms are raised (a serial node and a GPIO button with an LED), the gateway is stopped
and started again: the node's heartbeats must be answered with the alarm's LED state, not 0,
and the GPIO LED must be on (blinking: alarm received) without any new press.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from conftest import write_site
from test_serial_gateway import KEY, run_for, wait_until

from gateway.app import Gateway
from simulator.nodes import BusSimulator, NodeSpec

DEVICES = """
[[devices]]
id = "er-desk-1"
ward = "cap-cuu"
room = "Quầy tiếp đón"
pin = 17
led_pin = 22

[[devices]]
id = "bed-12"
ward = "cap-cuu"
room = "Giường 12"
input = "serial"
node = 12
key_file = "node12.key"
"""


def test_leds_show_open_alarms_again_after_a_restart(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    sim = BusSimulator([NodeSpec(12, key=KEY, hb_ms=200)], tmp_path / "bus")
    sim.start()
    key = tmp_path / "node12.key"
    key.write_text(KEY.hex() + "\n")
    os.chmod(key, 0o600)
    config = write_site(tmp_path, broker.port, devices=DEVICES,
                        extra=f'[serial]\nport = "{sim.port}"\nsupervision_s = 600\n')
    try:
        async def raise_two(gw: Gateway) -> None:
            await asyncio.to_thread(sim.press, 12)
            await asyncio.to_thread(wait_until, lambda: sim.led(12) == 1)
            pin = gw.pin_factory.pin(17)
            pin.drive_low()
            await asyncio.to_thread(wait_until, lambda: len(gw.alarm_engine.open_alarms()) == 2)
            pin.drive_high()
            await asyncio.to_thread(wait_until, lambda: gw.gpio.led("er-desk-1") == 1)
            assert {a.device for a in gw.alarm_engine.open_alarms()} == {"bed-12", "er-desk-1"}

        asyncio.run(run_for(config, raise_two))

        async def after_restart(gw: Gateway) -> None:
            assert gw.gpio.led("er-desk-1") == 1  # set at start, no press needed
            assert gw.pin_factory.pin(22).state  # the LED is driven (blinking starts on)
            sent = gw.serial.health()["states_sent"]
            # two heartbeats answered after the restart: each STATE must say "alarm received"
            await asyncio.to_thread(
                wait_until, lambda: gw.serial.health()["states_sent"] >= sent + 2)
            assert sim.led(12) == 1

        asyncio.run(run_for(config, after_restart))
    finally:
        sim.stop()
